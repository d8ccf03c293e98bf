"""Endpointing: webrtcvad frames in, utterance events out.

The state machine works on the input timeline: each frame carries the time
of its first sample, so every event time is reproducible in file mode.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import webrtcvad

from .overheard import Overheard, Stretch
from .rates import SAMPLE_RATE
from .settings import VadSettings

# Speech behind the echo gate that stopped this recently when the gate opened is still going on: a gap
# between words. Not vad.pause_ms, which is short so that replies are prepared early (at 60 ms, a gap
# in the AMI clip's speech made its second half an utterance of its own).
WORD_GAP_MS = 100


@dataclass(frozen=True)
class SpeechStarted:
    start: float  # first voiced frame


@dataclass(frozen=True)
class SpeechPaused:
    """Silence has lasted `pause_ms`: the utterance so far may be complete."""

    audio: np.ndarray  # float32, 16 kHz, pre-roll included
    start: float
    end: float  # end of the last voiced frame
    at: float  # when the pause was noticed
    longest_pause: float = 0.0  # the longest silence the speaker went on after, earlier in this utterance


@dataclass(frozen=True)
class SpeechResumed:
    at: float
    start: float  # the utterance's first voiced frame, before the pause


@dataclass(frozen=True)
class SpeechEnded:
    audio: np.ndarray
    start: float
    end: float
    at: float  # the endpoint decision


@dataclass(frozen=True)
class SpeechDropped:
    """Voice too short to be an utterance: a click, a cough, a blip."""

    start: float
    end: float
    at: float


@dataclass(frozen=True)
class SpeechOverheard:
    """Voice heard while the echo gate was shut, now over: the user, or the agent's own echo."""

    audio: np.ndarray
    start: float
    end: float
    at: float  # when the gate opened


VadEvent = SpeechStarted | SpeechPaused | SpeechResumed | SpeechEnded | SpeechDropped | SpeechOverheard


def int16_frame(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16).tobytes()


def dbfs(audio: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return 20 * np.log10(max(rms, 1e-10))


class Endpointer:
    """Feed 16 kHz float32 frames of `frame_ms`; get VadEvents back."""

    def __init__(self, settings: VadSettings):
        self.settings = settings
        self.frame_len = SAMPLE_RATE * settings.frame_ms // 1000
        self._vad = webrtcvad.Vad(settings.aggressiveness)
        frame_s = settings.frame_ms / 1000
        self._frame_s = frame_s
        self._onset_frames = max(1, round(settings.onset_ms / settings.frame_ms))
        self._pre_roll = deque(maxlen=max(1, round(settings.pre_roll_ms / settings.frame_ms)) + self._onset_frames)
        self._recent = deque(maxlen=self._onset_frames + 1)
        self._overheard = Overheard(frame_s, self._pre_roll.maxlen, round(0.2 / frame_s))
        self.reset()

    def reset(self) -> None:
        self._pre_roll.clear()
        self._recent.clear()
        self._frames: list[np.ndarray] = []
        self._in_speech = False
        self._start = 0.0
        self._last_voiced_end = 0.0
        self._voiced_s = 0.0
        self._paused = False
        self._longest_pause = 0.0

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def is_voiced(self, frame: np.ndarray) -> bool:
        if dbfs(frame) < self.settings.energy_floor_dbfs:
            return False
        return self._vad.is_speech(int16_frame(frame), SAMPLE_RATE)

    @property
    def overhearing(self) -> bool:
        """Voice is being set aside behind the echo gate."""
        return self._overheard.collecting

    @property
    def voiced_seconds(self) -> float:
        """Voiced time in the open utterance so far."""
        return self._voiced_s if self._in_speech else 0.0

    def process(self, frame: np.ndarray, t: float, echo: bool = False) -> list[VadEvent]:
        """`frame` starts at input time `t` (seconds); `echo` marks it as maybe our own voice.

        A frame marked as echo never starts an utterance; if it is voiced it is
        set aside, and handed back when the gate opens (`SpeechOverheard`).
        """
        if frame.shape[0] != self.frame_len:
            raise ValueError(f"expected {self.frame_len} samples, got {frame.shape[0]}")
        if echo and not self._in_speech:
            self._overheard.add(frame, t, self.is_voiced(frame))
            return []
        events = self._gate_opened(t) if self._overheard.pending else []
        return events + self._step(frame, t, not echo and self.is_voiced(frame))

    def _gate_opened(self, t: float) -> list[VadEvent]:
        stretch = self._overheard.take()
        if stretch is None or stretch.voiced_s * 1000 < self.settings.min_speech_ms:
            return []
        if (t - stretch.end) * 1000 < max(WORD_GAP_MS, self.settings.pause_ms):  # still talking: it goes on
            return [self._adopt(stretch)]
        return [SpeechOverheard(stretch.audio, stretch.start, stretch.end, t)]

    def _adopt(self, stretch: Stretch) -> SpeechStarted:
        self._in_speech, self._paused, self._longest_pause = True, False, 0.0
        self._start, self._last_voiced_end, self._voiced_s = stretch.start, stretch.end, stretch.voiced_s
        self._frames = [stretch.audio]
        self._utterance_t0 = stretch.audio_start
        self._recent.clear()
        return SpeechStarted(self._start)

    def _step(self, frame: np.ndarray, t: float, voiced: bool) -> list[VadEvent]:
        end_t = t + self._frame_s
        if not self._in_speech:
            return self._listen(frame, t, voiced)
        self._frames.append(frame)
        if voiced:
            silence, self._last_voiced_end = t - self._last_voiced_end, end_t
            self._voiced_s += self._frame_s
            if self._paused:
                self._paused = False
                self._longest_pause = max(self._longest_pause, silence)
                return [SpeechResumed(t, self._start)]
            return []
        silence_ms = (end_t - self._last_voiced_end) * 1000
        if silence_ms >= self.settings.hangover_ms:
            return [self._finish(end_t)]
        if silence_ms >= self.settings.pause_ms and not self._paused:
            self._paused = True
            return [SpeechPaused(self._audio(), self._start, self._last_voiced_end, end_t, self._longest_pause)]
        return []

    def flush(self, t: float) -> list[VadEvent]:
        """End an open utterance now: the input ended, or its text sounds complete."""
        events = self._gate_opened(t) if self._overheard.pending else []
        return events + ([self._finish(t)] if self._in_speech else [])

    def _listen(self, frame: np.ndarray, t: float, voiced: bool) -> list[VadEvent]:
        self._pre_roll.append((t, frame))
        self._recent.append(voiced)
        # An onset needs most of the last few frames voiced, which rejects clicks.
        if sum(self._recent) < self._onset_frames:
            return []
        self._in_speech = True
        self._paused = False
        self._longest_pause = 0.0
        voiced_run = sum(self._recent)
        self._start = t + self._frame_s - voiced_run * self._frame_s
        self._last_voiced_end = t + self._frame_s
        self._voiced_s = voiced_run * self._frame_s
        self._frames = [f for _, f in self._pre_roll]
        self._utterance_t0 = self._pre_roll[0][0]
        self._pre_roll.clear()
        self._recent.clear()
        return [SpeechStarted(self._start)]

    def _audio(self) -> np.ndarray:
        return np.concatenate(self._frames)

    def _finish(self, at: float) -> VadEvent:
        audio, start, end, voiced_s = self._audio(), self._start, self._last_voiced_end, self._voiced_s
        self._in_speech = False
        self._frames = []
        self._recent.clear()
        if voiced_s * 1000 < self.settings.min_speech_ms:
            return SpeechDropped(start, end, at)
        # Trim trailing silence beyond a small margin: Whisper needs none of it.
        keep = int((end - self._utterance_t0 + 0.2) * SAMPLE_RATE)
        return SpeechEnded(audio[:keep], start, end, at)
