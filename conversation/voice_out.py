"""Text to the speaker: synthesis on the TTS thread, then into the player."""
from __future__ import annotations

import asyncio
from contextlib import aclosing
from dataclasses import dataclass
from typing import Callable

import numpy as np

from audio_io.player import Player
from audio_io.resample import StreamResampler
from tts.base import SpeechRequest, Synthesizer

from .model_thread import ModelThread

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


class VoiceOut:
    def __init__(self, player: Player, thread: ModelThread):
        self.player = player
        self.thread = thread

    async def speak(self, outlet: Outlet, sentences: asyncio.Queue, voice: VoiceChoice, stop,
                    on_sentence: Callable[[int, str], None] = lambda i, s: None,
                    on_first_audio: Callable[[], None] = lambda: None) -> None:
        """Speak sentences from the queue, in order, until it yields None."""
        index = 0
        while (text := await sentences.get()) is not None:
            on_sentence(index, text)
            request = SpeechRequest(text=text, voice=voice.settings, language=voice.language,
                                    speed=voice.speed, first_in_reply=index == 0, cancel=stop)
            resampler = None
            first = index == 0
            async with aclosing(self.thread.iterate(lambda: voice.synthesizer.stream(request))) as chunks:
                async for audio in chunks:
                    if resampler is None:
                        resampler = StreamResampler(voice.synthesizer.sample_rate, self.player.rate)
                        on_first_audio()
                    if first:
                        audio = trim_leading_silence(audio)  # every ms counts before the first word
                        first = False
                    outlet.push(index, resampler(audio))
            tail = resampler(np.zeros(0, dtype=np.float32), last=True) if resampler else np.zeros(0, np.float32)
            outlet.push(index, tail, sentence_done=True)
            index += 1

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
