"""Speech heard while the echo gate is shut: set aside, never thrown away.

Until the echo canceller has converged, the VAD may not act on what the mic
hears near the agent's own playback: it could be the agent's residual echo.
The user may be talking all the same. `Overheard` keeps the voiced stretches
of that time, so the agent can transcribe them once it stops talking and
answer them, or recognise its own words and let them go.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Stretch:
    """Voiced audio from behind the gate, pre-roll included."""

    audio: np.ndarray
    audio_start: float  # its first sample
    start: float  # first voiced frame
    end: float  # end of the last voiced frame
    voiced_s: float


class Overheard:
    def __init__(self, frame_s: float, pre_roll_frames: int, tail_frames: int):
        self._frame_s = frame_s
        self._tail_frames = tail_frames  # silence kept after the last voiced frame
        self._pre_roll: deque[tuple[float, np.ndarray]] = deque(maxlen=max(1, pre_roll_frames))
        self._frames: list[np.ndarray] = []
        self._voiced_upto = 0  # frames up to the last voiced one
        self._audio_start = self._start = self._end = self._voiced_s = 0.0

    @property
    def collecting(self) -> bool:
        return bool(self._frames)

    @property
    def pending(self) -> bool:
        """Something to take (or forget) when the gate opens."""
        return bool(self._frames or self._pre_roll)

    def add(self, frame: np.ndarray, t: float, voiced: bool) -> None:
        """A frame the gate kept from the VAD."""
        if not self._frames:
            if not voiced:
                self._pre_roll.append((t, frame))
                return
            self._audio_start = self._pre_roll[0][0] if self._pre_roll else t
            self._frames, self._start = [f for _, f in self._pre_roll], t
            self._pre_roll.clear()
        self._frames.append(frame)
        if voiced:
            self._voiced_upto = len(self._frames)
            self._end = t + self._frame_s
            self._voiced_s += self._frame_s

    def take(self) -> Stretch | None:
        """The gate opened: what was collected behind it, if anything."""
        self._pre_roll.clear()
        if not self._frames:
            return None
        kept = self._frames[:self._voiced_upto + self._tail_frames]
        stretch = Stretch(np.concatenate(kept), self._audio_start, self._start, self._end, self._voiced_s)
        self._frames, self._voiced_upto, self._voiced_s = [], 0, 0.0
        return stretch
