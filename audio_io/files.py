"""Reading and writing audio files, with errors a person can act on."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr


class AudioFileError(Exception):
    """An audio file that cannot be used; the message says why."""


def read_audio(path: str | Path, rate: int | None = None) -> tuple[np.ndarray, int]:
    """Return float32 mono samples and their rate (resampled to `rate` if given)."""
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"audio file not found: {path}")
    try:
        audio, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile reports format problems as several types
        raise AudioFileError(f"cannot read audio file {path}: {error}; use a wav, flac or mp3 file") from None
    mono = audio.mean(axis=1).astype(np.float32)
    if mono.size == 0:
        raise AudioFileError(f"audio file is empty: {path}")
    if rate and rate != file_rate:
        return soxr.resample(mono, file_rate, rate).astype(np.float32), rate
    return mono, file_rate


def write_wav(path: str | Path, audio: np.ndarray, rate: int) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(audio, -1.0, 1.0), rate, subtype="PCM_16")


class WavWriter:
    """A 16-bit wav written block by block, so a long recording never sits in memory."""

    def __init__(self, path: str | Path, rate: int):
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = sf.SoundFile(str(path), "w", samplerate=rate, channels=1, subtype="PCM_16")
        except Exception as error:
            raise AudioFileError(f"cannot write audio file {path}: {error}") from None

    def write(self, audio: np.ndarray) -> None:
        self._file.write(np.clip(audio, -1.0, 1.0))

    def close(self) -> None:
        self._file.close()
