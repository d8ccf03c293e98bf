"""Text to the speaker: synthesis on the TTS thread, then into the player."""
from __future__ import annotations

import asyncio
import threading
from contextlib import aclosing
from dataclasses import dataclass
from typing import AsyncIterator, Callable

import numpy as np

from audio_io.player import Player
from audio_io.resample import StreamResampler
from tts.base import SpeechRequest, Synthesizer

from .model_thread import ModelThread
from .repeat_guard import Draft

SILENCE_LEVEL = 0.01


@dataclass(frozen=True)
class VoiceChoice:
    """Which synthesizer speaks, with which voice settings."""

    name: str
    synthesizer: Synthesizer
    settings: object
    language: str | None
    speed: float
    mismatch: str | None = None  # why this voice can't speak the reply's language


class Outlet:
    """One reply's way to the player, closed while the reply is speculative.

    `is_held()` asks the reply's phase, the one place that state lives; what
    arrives meanwhile waits here and goes on at `flush()`, the commit.
    """

    def __init__(self, player: Player, turn_id: int, is_held: Callable[[], bool] = lambda: False):
        self.player = player
        self.turn_id = turn_id
        self._is_held = is_held
        self._waiting: list[tuple[int, np.ndarray, bool]] = []

    def push(self, sentence: int, audio: np.ndarray, sentence_done: bool = False) -> None:
        if self._is_held():
            self._waiting.append((sentence, audio, sentence_done))
        else:
            self.player.push(self.turn_id, sentence, audio, sentence_done)

    def flush(self) -> None:
        for waiting in self._waiting:
            self.player.push(self.turn_id, *waiting)
        self._waiting.clear()


class SynthesisAhead:
    """A piece synthesized before it may be spoken; its audio waits here until it is, or is dropped."""

    def __init__(self, thread: ModelThread, synthesizer: Synthesizer, request: SpeechRequest):
        self.text = request.text
        self._cancel = request.cancel
        self._chunks: asyncio.Queue = asyncio.Queue()
        self._task = asyncio.ensure_future(self._run(thread, synthesizer, request))

    async def _run(self, thread: ModelThread, synthesizer: Synthesizer, request: SpeechRequest) -> None:
        try:
            async with aclosing(thread.iterate(lambda: synthesizer.stream(request))) as chunks:
                async for audio in chunks:
                    self._chunks.put_nowait(audio)
        finally:
            self._chunks.put_nowait(None)

    async def chunks(self) -> AsyncIterator[np.ndarray]:
        while (audio := await self._chunks.get()) is not None:
            yield audio
        await self._task  # what the synthesis raised, if it failed

    async def drop(self) -> None:
        self._cancel.set()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


class VoiceOut:
    def __init__(self, player: Player, thread: ModelThread):
        self.player = player
        self.thread = thread

    async def speak(self, outlet: Outlet, sentences: asyncio.Queue, voice: VoiceChoice, stop,
                    on_sentence: Callable[[int, str], None] = lambda i, s: None,
                    on_first_audio: Callable[[], None] = lambda: None) -> None:
        """Speak sentences from the queue, in order, until it yields None.

        A Draft before the first sentence is synthesized ahead, on the core the
        LLM leaves free, while the repeat guard still judges the reply's opening;
        it is heard only if the first sentence turns out to be that same piece.
        """
        index, ahead = 0, None
        try:
            while (item := await sentences.get()) is not None:
                if isinstance(item, Draft):
                    if ahead is not None:
                        await ahead.drop()
                    ahead = SynthesisAhead(self.thread, voice.synthesizer,
                                           self._request(item.text, voice, True, threading.Event()))
                    continue
                on_sentence(index, item)
                if ahead is None or ahead.text != item:
                    if ahead is not None:
                        await ahead.drop()
                    ahead = SynthesisAhead(self.thread, voice.synthesizer, self._request(item, voice, index == 0, stop))
                await self._play(outlet, index, ahead.chunks(), voice, on_first_audio)
                ahead = None
                index += 1
        finally:
            if ahead is not None:
                await ahead.drop()

    def _request(self, text: str, voice: VoiceChoice, first: bool, cancel: threading.Event) -> SpeechRequest:
        return SpeechRequest(text=text, voice=voice.settings, language=voice.language, speed=voice.speed,
                             first_in_reply=first, cancel=cancel)

    async def _play(self, outlet: Outlet, index: int, chunks: AsyncIterator[np.ndarray], voice: VoiceChoice,
                    on_first_audio: Callable[[], None]) -> None:
        """One sentence's audio into the outlet, resampled to the player's rate."""
        resampler = None
        async with aclosing(chunks):
            async for audio in chunks:
                if resampler is None:
                    resampler = StreamResampler(voice.synthesizer.sample_rate, self.player.rate)
                    on_first_audio()
                    if index == 0:
                        audio = trim_leading_silence(audio)  # every ms counts before the first word
                outlet.push(index, resampler(audio))
        tail = resampler(np.zeros(0, dtype=np.float32), last=True) if resampler else np.zeros(0, np.float32)
        outlet.push(index, tail, sentence_done=True)

    async def say(self, outlet: Outlet, sentences: list[str], voice: VoiceChoice, stop,
                  on_sentence: Callable[[int, str], None] = lambda i, s: None,
                  on_first_audio: Callable[[], None] = lambda: None) -> None:
        """Speak fixed sentences (a greeting, an apology, a confirmation) without the LLM."""
        queue: asyncio.Queue = asyncio.Queue()
        for item in [*sentences, None]:
            queue.put_nowait(item)
        await self.speak(outlet, queue, voice, stop, on_sentence, on_first_audio)


def trim_leading_silence(audio: np.ndarray, keep: int = 64) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > SILENCE_LEVEL)
    if loud.size == 0:
        return audio
    return audio[max(0, loud[0] - keep):]
