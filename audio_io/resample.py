"""Streaming conversion of any rate to another, block by block."""
from __future__ import annotations

import numpy as np
import soxr


class StreamResampler:
    """Keeps filter state between blocks, so block joins are seamless."""

    def __init__(self, in_rate: int, out_rate: int):
        self.in_rate, self.out_rate = in_rate, out_rate
        self._stream = None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.float32)
        if self._stream is None:
            return block
        return self._stream.resample_chunk(block, last=last)


class Framer:
    """Cuts a stream of variable-size blocks into fixed-size frames."""

    def __init__(self, frame_len: int):
        self.frame_len = frame_len
        self._pending = np.zeros(0, dtype=np.float32)

    def __call__(self, block: np.ndarray) -> list[np.ndarray]:
        data = np.concatenate([self._pending, block]) if self._pending.size else block
        count = data.shape[0] // self.frame_len
        frames = [data[i * self.frame_len:(i + 1) * self.frame_len] for i in range(count)]
        self._pending = data[count * self.frame_len:].copy()
        return frames
