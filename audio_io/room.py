"""A closed-loop open-speaker model for file mode: what the speaker plays comes back into the mic.

The echo is computed while the conversation runs, block by block, from what was
really played, so barge-in, flushed replies and pauses all echo as they would
in a room. Nothing is precomputed from the reply audio.

Timelines: the speaker and the mic both start at sample 0 and advance by the
blocks given to `play()` and `mic()`. Call both once per tick with blocks of
the same interval (a silent speaker plays zeros). The order within a tick does
not matter while the delay is at least one block; with a shorter delay, call
`play()` first, since echo landing in mic samples already returned is lost.
"""
from __future__ import annotations

import math

import numpy as np

from .rates import SAMPLE_RATE

RT60_S = 0.3  # a furnished living room or office
_EARLY_REFLECTIONS = 5  # walls, desk, ceiling: distinct copies 2-20 ms after the direct path
_TAIL_START_S = 0.005
_TAIL_LEVEL = 0.05  # tail amplitude at its start, relative to the direct path: about 0 dB direct-to-reverberant

_SPEC_HELP = "--simulate-echo expects DELAY_MS:GAIN_DB, like 80:-12"


def parse_echo_spec(spec: str) -> tuple[float, float]:
    """'80:-10' -> (80.0, -10.0): delay in ms (0-2000), gain in dB (-60 to 0)."""
    parts = str(spec).strip().split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        delay_ms, gain_db = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"{_SPEC_HELP}; got {spec!r}") from None
    if not (0.0 <= delay_ms <= 2000.0 and -60.0 <= gain_db <= 0.0):
        raise ValueError(f"{_SPEC_HELP}, with a delay of 0-2000 ms and a gain of -60 to 0 dB; got {spec!r}")
    return delay_ms, gain_db


def room_impulse_response(sample_rate: int, gain_db: float, reverb: bool = True, seed: int = 0) -> np.ndarray:
    """Speaker-to-mic response without the bulk delay, scaled to carry `gain_db` of energy.

    The direct path is tap 0; with reverb, a few early reflections and an
    exponentially decaying noise tail (RT60_S) follow.
    """
    if not reverb:
        return np.array([10 ** (gain_db / 20)])
    rng = np.random.default_rng(seed)
    length = int(RT60_S * sample_rate)
    t = np.arange(length) / sample_rate
    decay = np.exp(-math.log(1000) * t / RT60_S)  # -60 dB at RT60_S
    response = _TAIL_LEVEL * rng.standard_normal(length) * decay
    response[t < _TAIL_START_S] = 0.0
    response[0] = 1.0
    reflection_taps = rng.integers(int(0.002 * sample_rate), int(0.020 * sample_rate), _EARLY_REFLECTIONS)
    reflection_gains = rng.uniform(0.15, 0.5, _EARLY_REFLECTIONS) * rng.choice([-1.0, 1.0], _EARLY_REFLECTIONS)
    np.add.at(response, reflection_taps, reflection_gains * decay[reflection_taps])
    response *= 10 ** (gain_db / 20) / np.sqrt(np.sum(response**2))
    return response


def _as_float(block: np.ndarray) -> np.ndarray:
    """Samples in [-1, 1], whatever the caller's dtype, so int16 and float blocks can be mixed."""
    block = np.asarray(block)
    if block.ndim != 1:
        raise ValueError(f"RoomEcho takes mono 1-D blocks, got shape {block.shape}")
    if block.dtype == np.int16:
        return block.astype(np.float64) / 32768.0
    return block.astype(np.float64)


def _like(samples: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.int16:
        return np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)
    return samples.astype(dtype)


class RoomEcho:
    """Delayed, attenuated, reverberated speaker output added to the mic, streaming."""

    def __init__(self, delay_ms: float, gain_db: float, sample_rate: int = SAMPLE_RATE, reverb: bool = True,
                 seed: int = 0):
        if delay_ms < 0:
            raise ValueError(f"echo delay must be >= 0 ms, got {delay_ms}")
        self.sample_rate = sample_rate
        self.delay = round(delay_ms * sample_rate / 1000)
        self.response = room_impulse_response(sample_rate, gain_db, reverb, seed)
        self._spectra: dict[int, np.ndarray] = {}  # response FFT per transform size
        self.reset()

    def reset(self) -> None:
        self._speaker_end = 0  # samples played so far
        self._mic_end = 0  # samples captured so far
        self._echo = np.zeros(0)  # echo due at mic samples _mic_end, _mic_end + 1, ...

    def play(self, block: np.ndarray) -> None:
        """The speaker emitted `block` right after the previous one."""
        samples = _as_float(block)
        if samples.size == 0:
            return
        echo = self._convolve(samples)
        start = self._speaker_end + self.delay - self._mic_end  # index into the pending echo
        self._speaker_end += samples.size
        if start < 0:  # the head lands in mic samples already returned: it is in the past
            echo, start = echo[-start:], 0
        end = start + echo.size
        if end > self._echo.size:
            self._echo = np.concatenate([self._echo, np.zeros(end - self._echo.size)])
        self._echo[start:end] += echo

    def mic(self, block: np.ndarray) -> np.ndarray:
        """The mic captured `block`; return it with the room's echo added, in `block`'s dtype."""
        samples = _as_float(block)
        due = self._echo[:samples.size]
        out = samples.copy()
        out[:due.size] += due
        self._echo = self._echo[samples.size:]
        self._mic_end += samples.size
        return _like(out, np.asarray(block).dtype)

    def _convolve(self, samples: np.ndarray) -> np.ndarray:
        if self.response.size == 1:
            return samples * self.response[0]
        size = samples.size + self.response.size - 1
        n_fft = 1 << (size - 1).bit_length()
        spectrum = self._spectra.get(n_fft)
        if spectrum is None:
            spectrum = self._spectra[n_fft] = np.fft.rfft(self.response, n_fft)
        return np.fft.irfft(np.fft.rfft(samples, n_fft) * spectrum, n_fft)[:size]
