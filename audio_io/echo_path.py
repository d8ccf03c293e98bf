"""The room's echo path, measured from the probe: to hear the user through the agent's loudest words.

AEC3 removes the echo well, but while the agent talks loudly its suppressor
also removes a user who is quieter than the echo: a barge-in at -6 dB echo
gain went unheard for a second or more. The probe is white noise, so the
room's impulse response follows from it by deconvolution. With it the echo
can be predicted sample by sample from what the speaker plays, and taken
away linearly, without suppression: what is left is the user, plus a
residual 20-30 dB below the echo.

`EchoPath.residual()` gives that residual and says whether it is clearly
more than the model's own error, i.e. someone is talking over the agent.
"""
from __future__ import annotations

import logging
from collections import deque

import numpy as np

from .rates import SAMPLE_RATE

log = logging.getLogger(__name__)

LENGTH_S = 0.5  # bulk delay (up to ~200 ms) plus the room's reverberation
TAIL_S = 0.3  # kept after the direct path: a furnished room's reverberation
LEAD_SAMPLES = 32  # kept before the direct path's peak (2 ms)
BLOCK = 160  # 10 ms frames, as the canceller gets them
MIN_ERLE_DB = 15.0  # a fit that cancels less of the probe's own echo is not used
TALK_OVER_DB = -12.0  # residual within this of the recent echo peak: more than the model's error
PEAK_HOLD = 10  # frames of predicted echo the residual is compared with (100 ms)
SUSTAINED = (3, 4)  # a talker is in 3 of the last 4 frames: the model's own misses last a frame or two
# The room may have changed since the probe (a sound server that retunes its latency, a laptop moved):
# the path is trusted only while, over the last few seconds of echo, it takes most of it away.
HEALTH_WINDOW = 300  # frames of expected echo judged (3 s of the agent talking)
HEALTH_FRAMES = 30  # at least this many before any judgement (300 ms)
HEALTHY_DB = -15.0  # median residual against the predicted echo
ECHO_FLOOR = (32768 * 10 ** (-60 / 20)) ** 2  # int16 power: no echo expected below this
SPEECH_FLOOR = (32768 * 10 ** (-55 / 20)) ** 2  # a residual quieter than the VAD's floor is nobody


def fit_impulse_response(far: np.ndarray, mic: np.ndarray, length: int) -> np.ndarray:
    """Least-squares room response by regularised spectral division: exact for white noise.

    Only the stretch from the direct path on is kept: before it there can be no echo, and the
    fit's noise there would be multiplied by everything the speaker plays.
    """
    size = 1 << (len(far) + length).bit_length()
    spectrum = np.fft.rfft(far, size)
    power = np.abs(spectrum) ** 2
    response = np.fft.irfft(np.fft.rfft(mic, size) * np.conj(spectrum) / (power + 1e-3 * power.mean()), size)
    response = response[:length]
    direct = int(np.argmax(np.abs(response)))
    kept = np.zeros_like(response)
    start, end = max(0, direct - LEAD_SAMPLES), direct + int(TAIL_S * SAMPLE_RATE)
    kept[start:end] = response[start:end]
    return kept


class EchoPath:
    """A fitted response, convolved with the far end frame by frame (partitioned, overlap-save)."""

    def __init__(self, response: np.ndarray):
        parts = -(-len(response) // BLOCK)
        padded = np.zeros(parts * BLOCK)
        padded[:len(response)] = response
        # Each partition's spectrum, zero-padded to 2 blocks for overlap-save.
        self._spectra = np.fft.rfft(np.pad(padded.reshape(parts, BLOCK), ((0, 0), (0, BLOCK))), axis=1)
        self._history = np.zeros_like(self._spectra)  # spectra of the last `parts` far blocks, newest first
        self._previous = np.zeros(BLOCK)
        self._echo_powers = np.zeros(PEAK_HOLD)
        self._recent = np.zeros(SUSTAINED[1], dtype=bool)
        self._fit_db: deque[float] = deque(maxlen=HEALTH_WINDOW)  # residual against echo, per echoed frame
        self._trusted = False

    @classmethod
    def from_probe(cls, far: np.ndarray, mic: np.ndarray) -> EchoPath | None:
        """Fit from the probe (far and mic, float, aligned); None if it would not help."""
        response = fit_impulse_response(far, mic, int(LENGTH_S * SAMPLE_RATE))
        predicted = np.convolve(far, response)[:len(mic)]
        erle = 10 * np.log10(np.sum(mic**2) / max(np.sum((mic - predicted) ** 2), 1e-12))
        return cls(response) if erle >= MIN_ERLE_DB else None

    def residual(self, far: np.ndarray, mic: np.ndarray) -> tuple[np.ndarray, bool]:
        """Mic minus the predicted echo for one frame, and whether it holds someone talking over it."""
        block = np.concatenate([self._previous, far])
        self._previous = far
        self._history = np.roll(self._history, 1, axis=0)
        self._history[0] = np.fft.rfft(block)
        echo = np.fft.irfft(np.einsum("pk,pk->k", self._history, self._spectra))[BLOCK:]
        residual = mic - echo
        echo_power, power = np.mean(echo**2), np.mean(residual**2)
        if echo_power > ECHO_FLOOR:
            self._fit_db.append(10 * np.log10(max(power, 1.0) / echo_power))
        self._echo_powers = np.roll(self._echo_powers, 1)
        self._echo_powers[0] = echo_power
        expected = self._echo_powers.max()
        over = expected > ECHO_FLOOR and power > SPEECH_FLOOR and power > expected * 10 ** (TALK_OVER_DB / 10)
        self._recent = np.roll(self._recent, 1)
        self._recent[0] = over
        healthy = self.healthy
        if healthy != self._trusted and len(self._fit_db) >= HEALTH_FRAMES:
            self._trusted = healthy
            log.info("echo path from the probe: %s (median residual %.1f dB under the echo)",
                     "follows the room" if healthy else "no longer follows the room; AEC3 alone",
                     -float(np.median(self._fit_db)))
        return residual, bool(over and self._recent.sum() >= SUSTAINED[0] and healthy)

    @property
    def healthy(self) -> bool:
        """The path still predicts the room: the median frame of echo lost most of it."""
        return len(self._fit_db) >= HEALTH_FRAMES and float(np.median(self._fit_db)) <= HEALTHY_DB
