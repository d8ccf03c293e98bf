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


class VoiceOut:
    def __init__(self, player: Player, thread: ModelThread):
        self.player = player
        self.thread = thread

    async def speak(self, turn_id: int, sentences: asyncio.Queue, voice: VoiceChoice, cancel,
                    on_sentence: Callable[[int, str], None] = lambda i, s: None,
                    on_first_audio: Callable[[], None] = lambda: None) -> None:
        """Speak sentences from the queue, in order, until it yields None."""
        index = 0
        while (text := await sentences.get()) is not None:
            on_sentence(index, text)
            request = SpeechRequest(text=text, voice=voice.settings, language=voice.language,
                                    speed=voice.speed, first_in_reply=index == 0, cancel=cancel)
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
                    self.player.push(turn_id, index, resampler(audio))
            tail = resampler(np.zeros(0, dtype=np.float32), last=True) if resampler else np.zeros(0, np.float32)
            self.player.push(turn_id, index, tail, sentence_done=True)
            index += 1

    async def say(self, turn_id: int, sentences: list[str], voice: VoiceChoice, cancel,
                  on_sentence: Callable[[int, str], None] = lambda i, s: None,
                  on_first_audio: Callable[[], None] = lambda: None) -> None:
        """Speak fixed sentences (a greeting, an apology, a confirmation) without the LLM."""
        queue: asyncio.Queue = asyncio.Queue()
        for item in [*sentences, None]:
            queue.put_nowait(item)
        await self.speak(turn_id, queue, voice, cancel, on_sentence, on_first_audio)


def trim_leading_silence(audio: np.ndarray, keep: int = 64) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > SILENCE_LEVEL)
    if loud.size == 0:
        return audio
    return audio[max(0, loud[0] - keep):]
