"""Acoustic echo cancellation, so the user can barge in while the agent talks on open speakers.

The mic stays open during playback; the agent's own voice comes back through
the room and must not be taken for the user. `EchoCanceller` removes it with
WebRTC's AEC3 (the audio processing module shipped in the `livekit` wheel),
which estimates the acoustic delay itself, so live devices with 50-200 ms of
unknown latency need no calibration.

Frames are 10 ms of 16 kHz mono: the mic frame, and the far frame, which is
exactly what the speaker played during the same 10 ms (zeros when silent).
See docs/echo.md for the measurements behind the defaults.
"""
from __future__ import annotations

import logging
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .echo_path import EchoPath
from .rates import SAMPLE_RATE

log = logging.getLogger(__name__)

FRAME_LEN = 160  # 10 ms: the only frame size AEC3 takes
FRAME_S = FRAME_LEN / SAMPLE_RATE


class EchoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="cancel the agent's own voice in the mic signal (off: pass through)")
    backend: Literal["webrtc"] = Field("webrtc", description="webrtc: AEC3, from the livekit package")
    noise_suppression: bool = Field(False, description="WebRTC noise suppression after AEC; also lowers residual echo")
    high_pass_filter: bool = Field(True, description="remove rumble below ~80 Hz before cancelling")
    auto_gain_control: bool = Field(False, description="WebRTC AGC; off, since it pumps the level Whisper and the VAD see")
    warmup_s: float = Field(
        2.5, ge=0, le=30, description="far-end speech the canceller must hear before its output is trusted"
    )
    gate_window_ms: float = Field(
        500.0, gt=0, le=2000, description="how long after the speaker played something its echo may still arrive"
    )
    probe_s: float = Field(
        0.5, ge=0, le=3, description="a soft noise burst played at start so the canceller converges before "
        "the first reply (0: none; the first reply's first warmup_s then waits for the canceller)"
    )
    probe_dbfs: float = Field(-30.0, ge=-60, le=-10, description="the probe's level (RMS)")
    probe_erle_db: float = Field(
        15.0, ge=0, le=60, description="echo the canceller must remove from the probe to be trusted at once"
    )


def probe_signal(settings: EchoSettings, rate: int, seed: int = 0) -> np.ndarray:
    """White noise with short fades: it excites every frequency, so AEC3 learns the room in half a second.

    Speech would take 2 s or more; measured in docs/echo.md.
    """
    count = int(settings.probe_s * rate)
    noise = np.random.default_rng(seed).standard_normal(count)
    ramp = np.minimum(1.0, np.minimum(np.arange(count), count - 1 - np.arange(count)) / (0.02 * rate))
    return (noise * ramp * 10 ** (settings.probe_dbfs / 20)).astype(np.float32)


class EchoBackendMissing(RuntimeError):
    """The package for the chosen backend is not installed; the message names it."""


def _float_to_int16(frame: np.ndarray) -> np.ndarray:
    return np.clip(np.round(frame * 32768.0), -32768, 32767).astype(np.int16)


def _as_int16(frame: np.ndarray, name: str) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.shape != (FRAME_LEN,):
        raise ValueError(f"{name} frame must be {FRAME_LEN} mono samples (10 ms at 16 kHz), got shape {frame.shape}")
    if frame.dtype == np.int16:
        return frame
    if np.issubdtype(frame.dtype, np.floating):
        return _float_to_int16(frame)
    raise ValueError(f"{name} frame must be int16 or float in [-1, 1], got {frame.dtype}")


def _power(frame: np.ndarray) -> float:
    return float(np.mean(np.square(frame, dtype=np.float64)))


_FAR_ACTIVE_POWER = (32768 * 10 ** (-60 / 20)) ** 2  # -60 dBFS: the speaker is playing something


class _WebRtcAec:
    """AEC3 through livekit's FFI: two reusable 10 ms frames, processed in place."""

    def __init__(self, settings: EchoSettings):
        try:
            from livekit import rtc
        except ImportError:
            raise EchoBackendMissing(
                "echo cancellation needs the livekit package: pip install livekit (or set echo.enabled: false)"
            ) from None
        self._rtc = rtc
        self._settings = settings
        # AEC3 works in place on these two frames; the numpy views fill and read them without copies.
        self._mic = rtc.AudioFrame(bytearray(FRAME_LEN * 2), SAMPLE_RATE, 1, FRAME_LEN)
        self._far = rtc.AudioFrame(bytearray(FRAME_LEN * 2), SAMPLE_RATE, 1, FRAME_LEN)
        self._mic_samples = np.frombuffer(self._mic.data, dtype=np.int16)
        self._far_samples = np.frombuffer(self._far.data, dtype=np.int16)
        self.reset()

    def reset(self) -> None:
        settings = self._settings
        self._apm = self._rtc.AudioProcessingModule(
            echo_cancellation=True,
            noise_suppression=settings.noise_suppression,
            high_pass_filter=settings.high_pass_filter,
            auto_gain_control=settings.auto_gain_control,
        )

    def process(self, mic: np.ndarray, far: np.ndarray) -> np.ndarray:
        self._far_samples[:] = far
        self._apm.process_reverse_stream(self._far)
        self._mic_samples[:] = mic
        self._apm.process_stream(self._mic)
        return self._mic_samples.copy()


class _Passthrough:
    def reset(self) -> None:
        pass

    def process(self, mic: np.ndarray, far: np.ndarray) -> np.ndarray:
        return mic.copy()


class _ProbeMeter:
    """Judges from the probe whether the canceller has learnt the room: how much of its echo was removed."""

    def __init__(self, skip_frames: int, erle_db: float):
        self._skip = skip_frames  # the probe's first part, while the canceller is still learning
        self._erle_db = erle_db
        self._heard = 0
        self._frames = 0
        self._mic = 0.0
        self._out = 0.0

    def add(self, mic_power: float, out_power: float) -> None:
        self._heard += 1
        if self._heard > self._skip:
            self._frames += 1
            self._mic += mic_power
            self._out += out_power

    @property
    def started(self) -> bool:
        return self._heard > 0

    def converged(self, quiet_power: float | None) -> bool:
        if not self._frames:
            return False
        mic, out = self._mic / self._frames, self._out / self._frames
        # The probe barely raised the mic's level: headphones or a muted speaker, nothing to cancel.
        no_echo = quiet_power is not None and mic < 2 * quiet_power
        erle = 10 * np.log10(mic / max(out, 1.0))
        converged = no_echo or erle >= self._erle_db
        log.info("echo probe: %s (removed %.1f dB of its echo; the mic %s)",
                 "canceller trusted" if converged else "not converged, the warm-up gate stays", erle,
                 f"{10 * np.log10(mic / quiet_power):.1f} dB over its quiet level" if quiet_power else
                 "digitally silent before it")
        return converged


class EchoCanceller:
    """Mic frame + far frame in, echo-free mic frame out; 10 ms at a time.

    Frames are int16, or float in [-1, 1]; the output has the mic frame's dtype.
    Keep one canceller for the whole session: it learns the echo path on the
    first sound it plays and keeps it through silences; `reset()` only on a new device.

    `likely_echo` tells whether the frame just returned is probably residual
    echo rather than the user, for the VAD to set aside. AEC3 needs about 2 s
    of far-end speech to converge (docs/echo.md), or half a second of the
    probe's noise. Until it has converged, any frame within `gate_window_ms`
    of far-end audio is flagged; converged means a probe whose echo it removed
    (`start_probe()`), or `warmup_s` of far-end audio heard. Afterwards nothing
    is flagged: the measured residual no longer trips the VAD, while the user
    talking over the agent is still heard.
    """

    def __init__(self, settings: EchoSettings | None = None):
        self.settings = settings or EchoSettings()
        self._backend = _WebRtcAec(self.settings) if self.settings.enabled else _Passthrough()
        self._window_frames = max(1, round(self.settings.gate_window_ms / 1000 / FRAME_S))
        self._warmup_frames = round(self.settings.warmup_s / FRAME_S)
        self._reset_gate()

    def reset(self) -> None:
        """Forget the learnt echo path (a new device or session); the warm-up starts again."""
        self._backend.reset()
        self._reset_gate()

    def start_probe(self) -> None:
        """The probe is about to play: judge the canceller by how much of its echo it removes,
        and measure the room's echo path from it (audio_io/echo_path.py)."""
        self._probe = _ProbeMeter(round(self.settings.probe_s / FRAME_S / 2), self.settings.probe_erle_db)
        self._probe_frames: list[tuple[np.ndarray, np.ndarray]] = []

    @property
    def knows_the_room(self) -> bool:
        """The probe measured the echo path, so a user quieter than the echo is heard (echo_path.py)."""
        return self._path is not None

    @property
    def warmed_up(self) -> bool:
        return self.probe_converged or self._far_frames_heard >= self._warmup_frames

    def process(self, mic_frame: np.ndarray, far_frame: np.ndarray) -> np.ndarray:
        mic = _as_int16(mic_frame, "mic")
        far = _as_int16(far_frame, "far")
        out = self._backend.process(mic, far)
        if self._probe is not None and self.settings.enabled:
            self._probe_frames.append((far.astype(np.float64), mic.astype(np.float64)))
        if self._path is not None:
            # Over the agent's loud words AEC3 suppresses a quieter user too; the linear residual keeps them.
            residual, self.talked_over = self._path.residual(far.astype(np.float64), mic.astype(np.float64))
            if self.talked_over:
                out = np.clip(np.round(residual), -32768, 32767).astype(np.int16)
        self._update_gate(mic, far, out)
        dtype = np.asarray(mic_frame).dtype
        return (out / 32768.0).astype(dtype) if np.issubdtype(dtype, np.floating) else out

    def _reset_gate(self) -> None:
        self._far_frames_heard = 0
        self._frames_since_far = self._window_frames  # the speaker has been silent long enough
        self._quiet_power: float | None = None  # the mic's level with the speaker silent
        self._probe: _ProbeMeter | None = None
        self._probe_frames = []
        self._path: EchoPath | None = None
        self.probe_converged = False
        self.likely_echo = False
        self.talked_over = False  # the last frame held someone talking over the agent (its residual went out)

    def _update_gate(self, mic: np.ndarray, far: np.ndarray, out: np.ndarray) -> None:
        if _power(far) > _FAR_ACTIVE_POWER:
            self._far_frames_heard += 1
            self._frames_since_far = 0
            if self._probe is not None:
                self._probe.add(_power(mic), _power(out))
        else:
            self._frames_since_far += 1
        echo_may_arrive = self._frames_since_far < self._window_frames
        if not echo_may_arrive:
            power = _power(mic)
            self._quiet_power = power if self._quiet_power is None else 0.95 * self._quiet_power + 0.05 * power
            if self._probe is not None and self._probe.started:  # the probe and its echo are over
                self.probe_converged = self._probe.converged(self._quiet_power)
                if self.probe_converged:  # a probe talked over measures the user, not the room
                    far, mic = (np.concatenate(part) for part in zip(*self._probe_frames))
                    self._path = EchoPath.from_probe(far, mic)
                self._probe, self._probe_frames = None, []
        self.likely_echo = self.settings.enabled and echo_may_arrive and not self.warmed_up
