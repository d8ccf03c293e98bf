"""The speaker side: a pull-based jitter buffer.

The device callback (or the file-mode clock) pulls blocks with `read()`; gaps
are filled with zeros, so `clear()` and `pause()` take effect within one block.
Chunks carry a turn id, and chunks of a flushed turn are dropped on arrival.
Sound that stops or starts mid-word is faded over a few milliseconds, since a
waveform cut anywhere but at zero is heard as a click.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

FADE_S = 0.005  # short enough to keep a barge-in prompt, long enough to be no click


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
        self._fade = max(1, round(FADE_S * rate))
        self._sounding = False  # the last block ended in the middle of a turn's audio
        self._tail = np.zeros(0, dtype=np.float32)  # faded-out sound still to play after a stop
        self._fade_in_left = 0  # samples still to fade in after a resume

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
            self._stop_sounding()
            self._queue.clear()
            self._offset = 0
            self._paused = False
            self._playing_turn = None
            if below_turn is not None:
                self._flushed_below = max(self._flushed_below, below_turn)

    def pause(self, at: float) -> None:
        with self._lock:
            if not self._paused:
                self._stop_sounding()
            self._paused = True
            playback = self._playbacks.get(self._playing_turn)
            if playback is not None:
                playback.paused_at = at

    def resume(self) -> None:
        with self._lock:
            if self._paused and self._queue:
                self._fade_in_left = self._fade
            self._paused = False

    def playback(self, turn: int) -> Playback:
        with self._lock:
            return self._playbacks.get(turn, Playback())

    def forget(self, turn: int) -> None:
        with self._lock:
            self._playbacks.pop(turn, None)

    @property
    def busy(self) -> bool:
        """True while audio is queued or playing."""
        with self._lock:
            return bool(self._queue)

    # --- device side ---------------------------------------------------
    def read(self, frames: int, t: float) -> np.ndarray:
        """Fill one output block that starts at input time `t`."""
        out = np.zeros(frames, dtype=np.float32)
        with self._lock:
            filled = len(self._tail[:frames])
            out[:filled], self._tail = self._tail[:frames], self._tail[frames:]
            start = filled
            if self._paused or not self._queue or not self._ready():
                self._sounding = False
                return out
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
            self._fade_in(out[start:filled])
            self._sounding = bool(self._queue) and filled == frames
            return out

    def _stop_sounding(self) -> None:
        """Queue the next few ms, faded to zero, to play in place of a cut mid-waveform."""
        if not self._sounding:
            return
        upcoming, offset = [], self._offset
        wanted = self._fade
        for chunk in self._queue:
            if chunk.turn != self._queue[0].turn:
                break
            piece = chunk.audio[offset:offset + wanted]
            upcoming.append(piece)
            wanted -= len(piece)
            offset = 0
            if wanted <= 0:
                break
        audio = np.concatenate(upcoming) if upcoming else np.zeros(0, dtype=np.float32)
        self._tail = audio * np.linspace(1.0, 0.0, len(audio), endpoint=False, dtype=np.float32)
        self._sounding = False

    def _fade_in(self, audio: np.ndarray) -> None:
        if not self._fade_in_left or not len(audio):
            return
        done = self._fade - self._fade_in_left
        count = min(self._fade_in_left, len(audio))
        audio[:count] *= np.arange(done, done + count, dtype=np.float32) / self._fade
        self._fade_in_left -= count

    def _ready(self) -> bool:
        """A new turn waits for its prebuffer or a whole first sentence."""
        head = self._queue[0]
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
