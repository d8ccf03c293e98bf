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

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .rates import SAMPLE_RATE

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


class EchoCanceller:
    """Mic frame + far frame in, echo-free mic frame out; 10 ms at a time.

    Frames are int16, or float in [-1, 1]; the output has the mic frame's dtype.
    Keep one canceller for the whole session: it learns the echo path on the
    first reply and keeps it through silences; `reset()` only on a new device.

    `likely_echo` tells whether the frame just returned is probably residual
    echo rather than the user, for the VAD to ignore. AEC3 needs about 2 s of
    far-end speech to converge (docs/echo.md); until it has heard `warmup_s`
    of it, any frame within `gate_window_ms` of far-end audio is flagged.
    Afterwards nothing is flagged: the measured residual no longer trips the
    VAD, while the user talking over the agent is still heard.
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

    @property
    def warmed_up(self) -> bool:
        return self._far_frames_heard >= self._warmup_frames

    def process(self, mic_frame: np.ndarray, far_frame: np.ndarray) -> np.ndarray:
        mic = _as_int16(mic_frame, "mic")
        far = _as_int16(far_frame, "far")
        out = self._backend.process(mic, far)
        self._update_gate(far)
        dtype = np.asarray(mic_frame).dtype
        return (out / 32768.0).astype(dtype) if np.issubdtype(dtype, np.floating) else out

    def _reset_gate(self) -> None:
        self._far_frames_heard = 0
        self._frames_since_far = self._window_frames  # the speaker has been silent long enough
        self.likely_echo = False

    def _update_gate(self, far: np.ndarray) -> None:
        if _power(far) > _FAR_ACTIVE_POWER:
            self._far_frames_heard += 1
            self._frames_since_far = 0
        else:
            self._frames_since_far += 1
        echo_may_arrive = self._frames_since_far < self._window_frames
        self.likely_echo = self.settings.enabled and echo_may_arrive and not self.warmed_up
