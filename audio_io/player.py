"""The speaker side: a pull-based jitter buffer.

The device callback (or the file-mode clock) pulls blocks with `read()`; gaps
are filled with zeros, so `clear()` and `pause()` take effect within one block.
Chunks carry a turn id, and chunks of a flushed turn are dropped on arrival.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Chunk:
    turn: int
    sentence: int
    audio: np.ndarray
    sentence_done: bool


@dataclass
class Playback:
    """What one turn's audio did at the speaker, on the input timeline."""

    started_at: float | None = None
    paused_at: float | None = None
    sentence_samples: dict[int, int] = field(default_factory=dict)  # played per sentence
    sentence_totals: dict[int, int] = field(default_factory=dict)  # queued per sentence
    sentences_done: set[int] = field(default_factory=set)

    def heard_fraction(self, sentence: int) -> float:
        total = self.sentence_totals.get(sentence, 0)
        return self.sentence_samples.get(sentence, 0) / total if total else 0.0


class Player:
    def __init__(self, rate: int, prebuffer_s: float = 0.0):
        self.rate = rate
        self._prebuffer = int(prebuffer_s * rate)
        self._lock = threading.Lock()
        self._queue: deque[Chunk] = deque()
        self._offset = 0  # samples of queue[0] already played
        self._paused = False
        self._flushed_below = 0  # chunks of turns below this id are dropped
        self._playing_turn: int | None = None
        self._playbacks: dict[int, Playback] = {}
        self._held: set[int] = set()  # turns prepared ahead, not to be played yet

    # --- producer side -------------------------------------------------
    def push(self, turn: int, sentence: int, audio: np.ndarray, sentence_done: bool = False) -> None:
        with self._lock:
            if turn < self._flushed_below:
                return
            playback = self._playbacks.setdefault(turn, Playback())
            playback.sentence_totals[sentence] = playback.sentence_totals.get(sentence, 0) + len(audio)
            if sentence_done:
                playback.sentences_done.add(sentence)
            self._queue.append(Chunk(turn, sentence, np.asarray(audio, dtype=np.float32), sentence_done))

    def clear(self, below_turn: int | None = None) -> None:
        """Flush everything queued; drop later chunks of turns below `below_turn`."""
        with self._lock:
            self._queue.clear()
            self._offset = 0
            self._paused = False
            self._playing_turn = None
            if below_turn is not None:
                self._flushed_below = max(self._flushed_below, below_turn)

    def hold(self, turn: int) -> None:
        """Queue this turn's audio but don't play it until `release()`."""
        with self._lock:
            self._held.add(turn)

    def release(self, turn: int) -> None:
        with self._lock:
            self._held.discard(turn)

    def pause(self, at: float) -> None:
        with self._lock:
            self._paused = True
            playback = self._playbacks.get(self._playing_turn)
            if playback is not None:
                playback.paused_at = at

    def resume(self) -> None:
        with self._lock:
            self._paused = False

    def playback(self, turn: int) -> Playback:
        with self._lock:
            return self._playbacks.get(turn, Playback())

    def forget(self, turn: int) -> None:
        with self._lock:
            self._playbacks.pop(turn, None)

    @property
    def busy(self) -> bool:
        """True while audio is queued or playing (held audio aside)."""
        with self._lock:
            return any(chunk.turn not in self._held for chunk in self._queue)

    # --- device side ---------------------------------------------------
    def read(self, frames: int, t: float) -> np.ndarray:
        """Fill one output block that starts at input time `t`."""
        out = np.zeros(frames, dtype=np.float32)
        with self._lock:
            if self._paused or not self._queue or not self._ready():
                return out
            filled = 0
            while filled < frames and self._queue:
                chunk = self._queue[0]
                take = min(frames - filled, len(chunk.audio) - self._offset)
                out[filled:filled + take] = chunk.audio[self._offset:self._offset + take]
                self._account(chunk, t + filled / self.rate, take)
                filled += take
                self._offset += take
                if self._offset >= len(chunk.audio):
                    self._queue.popleft()
                    self._offset = 0
            return out

    def _ready(self) -> bool:
        """A new turn waits for its release, then its prebuffer or a whole first sentence."""
        head = self._queue[0]
        if head.turn in self._held:
            return False
        if head.turn == self._playing_turn:
            return True
        queued = 0
        for chunk in self._queue:
            if chunk.turn != head.turn:
                return True
            queued += len(chunk.audio)
            if chunk.sentence_done or queued >= self._prebuffer:
                return True
        return False

    def _account(self, chunk: Chunk, at: float, samples: int) -> None:
        playback = self._playbacks.setdefault(chunk.turn, Playback())
        if playback.started_at is None:
            playback.started_at = at
        self._playing_turn = chunk.turn
        playback.sentence_samples[chunk.sentence] = playback.sentence_samples.get(chunk.sentence, 0) + samples
