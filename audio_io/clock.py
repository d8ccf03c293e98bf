"""One clock: seconds on the input-audio timeline."""
from __future__ import annotations

import time


class InputClock:
    """The audio source ticks it once per block; anyone may read it.

    Between ticks the time is extrapolated from the monotonic clock, so
    events that happen between blocks (a token, a chunk) get a precise time.
    """

    MAX_EXTRAPOLATION_S = 0.25  # if the device stalls, don't run ahead of its samples

    def __init__(self) -> None:
        self._anchor = (0.0, time.monotonic())

    def tick(self, t: float) -> None:
        self._anchor = (t, time.monotonic())  # one tuple: readers never see half an update

    def now(self) -> float:
        t, at = self._anchor
        return t + min(time.monotonic() - at, self.MAX_EXTRAPOLATION_S)
