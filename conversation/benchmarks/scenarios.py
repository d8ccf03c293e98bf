"""Conversations built from real clips: a question, then the user again mid-reply.

Used by the barge-in tests and benchmark.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from audio_io.files import read_audio
from audio_io.rates import SAMPLE_RATE as RATE


def speech_onset(audio: np.ndarray, rate: int = RATE, threshold_db: float = -25.0) -> float:
    """First 5 ms window whose level is within `threshold_db` of the clip's peak."""
    hop = rate // 200
    levels = np.array([np.sqrt(np.mean(audio[i:i + hop] ** 2)) + 1e-9 for i in range(0, len(audio) - hop, hop)])
    db = 20 * np.log10(levels / levels.max())
    return float(np.argmax(db > threshold_db) * hop / rate)


def cough(duration_s: float = 0.15, seed: int = 0) -> np.ndarray:
    """A loud, short burst of shaped noise: voiced enough to trip the VAD for a moment."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * RATE)
    t = np.arange(n) / RATE
    envelope = np.sin(np.pi * np.arange(n) / n) ** 0.5
    voice = np.sin(2 * np.pi * 180 * t) + 0.5 * np.sin(2 * np.pi * 360 * t) + 0.3 * rng.normal(size=n)
    return (0.3 * envelope * voice).astype(np.float32)


# Annotated speech onsets (MANIFEST.tsv), where a clip opens with room noise.
KNOWN_ONSETS = {"lhotse_ES2011a.Headset-0-40s-46s.wav": 1.46}


def build(path: Path, parts: list[tuple[np.ndarray | Path, float]], tail_s: float = 1.0) -> dict:
    """Mix clips into one 16 kHz recording; return each part's start and true speech onset."""
    loaded = [(read_audio(p, RATE)[0] if isinstance(p, Path) else p, start) for p, start in parts]
    names = [p.name if isinstance(p, Path) else None for p, _ in parts]
    total = max(start + len(audio) / RATE for audio, start in loaded) + tail_s
    mix = np.zeros(int(total * RATE), dtype=np.float32)
    onsets = []
    for (audio, start), name in zip(loaded, names):
        i = int(start * RATE)
        mix[i:i + len(audio)] += audio
        onsets.append(start + KNOWN_ONSETS.get(name, speech_onset(audio)))
    sf.write(str(path), mix, RATE, subtype="PCM_16")
    return {"path": path, "onsets": onsets, "ends": [s + len(a) / RATE for a, s in loaded]}


def silent_after(output: np.ndarray, rate: int, t: float, window_s: float = 0.05) -> float | None:
    """Seconds from `t` until the output is silent for a whole window."""
    window = int(window_s * rate)
    start = int(t * rate)
    for i in range(start, len(output) - window, rate // 1000):
        if np.max(np.abs(output[i:i + window])) < 1e-3:
            return (i - start) / rate
    return None


class CutIn:
    """A user who cuts in `at_s` after the agent's reply begins: mixed into the mic as the speaker plays.

    A MicTransform for the file replay. The reply's start is read from the speaker itself (its
    first sound after `listen_after_s`, past the echo probe and the question), so the cut-in
    lands at the same point of the reply however long the agent took to answer.
    """

    def __init__(self, clip: np.ndarray, onset_in_clip: float, at_s: float, rate: int, listen_after_s: float):
        self.clip, self.onset_in_clip, self.at_s, self.rate = clip, onset_in_clip, at_s, rate
        self.listen_after = int(listen_after_s * rate)
        self.reply_start: float | None = None  # seconds into the replay
        self._played = 0
        self._captured = 0

    @property
    def onset(self) -> float | None:
        """When the user's speech begins, on the replay's timeline."""
        return None if self.reply_start is None else self.reply_start + self.at_s

    def play(self, block: np.ndarray) -> None:
        if self.reply_start is None and self._played + len(block) > self.listen_after:
            loud = np.flatnonzero(np.abs(block[max(0, self.listen_after - self._played):]) > 1e-3)
            if loud.size:
                self.reply_start = (self._played + max(0, self.listen_after - self._played) + loud[0]) / self.rate
        self._played += len(block)

    def mic(self, block: np.ndarray) -> np.ndarray:
        start, self._captured = self._captured, self._captured + len(block)
        if self.onset is None:
            return block
        clip_start = int(round((self.onset - self.onset_in_clip) * self.rate))
        lo, hi = max(start, clip_start), min(self._captured, clip_start + len(self.clip))
        if lo >= hi:
            return block
        mixed = block.astype(np.float32, copy=True)
        mixed[lo - start:hi - start] += self.clip[lo - clip_start:hi - clip_start]
        return mixed

