"""The models of one session, each on its own thread, loaded once.

Models are built from backends (the stage packages' `backends.py` pick them
from the settings); tests build them from fakes. The live config is never
kept here: every call that depends on it is given what it needs.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Protocol, runtime_checkable

import numpy as np

from audio_io.smart_turn import SmartTurn
from llm.backends import make_chat
from llm.base import ChatModel
from stt.backends import make_transcriber
from stt.base import Transcriber, Transcript
from tts.backends import BackendUnavailable, make_synthesizer
from tts.base import Synthesizer
from tts.errors import VoiceError
from tts.piper import PiperVoiceSettings

from .config import Config, Persona
from .heap import release_freed_memory
from .languages import reply_language, voice_mismatch
from .model_thread import ModelThread
from .voice_out import VoiceChoice

log = logging.getLogger(__name__)

FALLBACK_BACKEND = "piper"  # the bundled voice, which always loads


@runtime_checkable
class LoadProgress(Protocol):
    """Told as each model starts and finishes loading (the live view shows a spinner for each)."""

    def load_started(self, name: str) -> None: ...

    def load_finished(self, name: str) -> None: ...


async def _step(progress: LoadProgress | None, name: str, work: Awaitable) -> None:
    if progress is not None:
        progress.load_started(name)
    await work
    if progress is not None:
        progress.load_finished(name)


class Models:
    def __init__(self, transcriber: Transcriber, chat: ChatModel, make_synthesizer: Callable[[str], Synthesizer],
                 make_smart_turn: Callable[[], SmartTurn] = SmartTurn, fallback_to_piper: bool = True,
                 notify: Callable[[str], None] = log.warning):
        self.transcriber = transcriber
        self.chat = chat
        self._make_synthesizer = make_synthesizer
        self._make_smart_turn = make_smart_turn
        self.fallback_to_piper = fallback_to_piper
        self.notify = notify  # tells the person about a fallback
        self.stt_thread = ModelThread("whisper")
        self.tts_thread = ModelThread("tts")
        self.turn_thread = ModelThread("smart-turn")
        self.smart_turn: SmartTurn | None = None
        self.synthesizers: dict[str, Synthesizer] = {}
        self._unavailable: set[str] = set()  # backends that failed to load; the fallback speaks instead

    @classmethod
    def from_config(cls, config: Config, notify: Callable[[str], None] = log.warning) -> "Models":
        """The session's models, as the restart-only sections (stt, llm, tts) ask."""
        return cls(make_transcriber(config.stt), make_chat(config.llm),
                   lambda backend: make_synthesizer(backend, config.tts),
                   fallback_to_piper=config.tts.fallback_to_piper, notify=notify)

    async def load(self, config: Config, voices: list[str], progress: LoadProgress | None = None) -> None:
        """Load and warm up every model the given voices need, side by side."""
        steps = [_step(progress, "speech recognition (Whisper)", self.stt_thread.call(self.transcriber.load)),
                 _step(progress, "language model", asyncio.to_thread(self.chat.load)),
                 _step(progress, f"voice {', '.join(voices)}", self._load_voices(config, voices))]
        if config.turn.smart_turn and config.turn.early_end:
            steps.append(_step(progress, "turn detection (Smart Turn)", self.ensure_smart_turn()))
        await asyncio.gather(*steps)

    async def _load_voices(self, config: Config, names: list[str]) -> None:
        for name in names:
            await self.ensure_voice(name, config.voices[name])

    async def ensure_voice(self, name: str, settings) -> None:
        """Load what a voice needs (its backend, its model, its conditioning) before its first sentence."""
        synthesizer = await self._synthesizer(settings.backend, name)
        if synthesizer is None:
            settings, synthesizer = PiperVoiceSettings(), await self._synthesizer(FALLBACK_BACKEND, name)
        await self.tts_thread.call(synthesizer.prepare_voice, settings)

    async def _synthesizer(self, backend: str, voice: str) -> Synthesizer | None:
        """A backend, loaded once; None when it can't load and the bundled voice stands in."""
        if backend in self.synthesizers or backend in self._unavailable:
            return self.synthesizers.get(backend)
        try:
            synthesizer = self._make_synthesizer(backend)
            await self.tts_thread.call(synthesizer.load)
        except BackendUnavailable as error:
            if backend == FALLBACK_BACKEND or not self.fallback_to_piper:
                raise VoiceError(f"voice {voice!r}: {error}") from None
            self._unavailable.add(backend)
            self.notify(f"voice {voice!r}: {error}; speaking with the bundled Piper voice instead")
            return None
        self.synthesizers[backend] = synthesizer
        return synthesizer

    async def ensure_smart_turn(self) -> None:
        if self.smart_turn is None:
            smart_turn = self._make_smart_turn()
            await self.turn_thread.call(smart_turn.load)
            self.smart_turn = smart_turn

    async def transcribe(self, audio: np.ndarray) -> Transcript:
        return await self.stt_thread.call(self.transcriber.transcribe, audio)

    async def voice_complete(self, audio: np.ndarray) -> float | None:
        """Smart Turn's P(the voice sounds finished); None while it isn't loaded."""
        if self.smart_turn is None:
            return None
        return await self.turn_thread.call(self.smart_turn.probability, audio)

    def voice_for(self, persona: Persona, name: str, settings, detected_language: str | None) -> VoiceChoice:
        language = reply_language(persona.language, detected_language)
        synthesizer = self.synthesizers.get(settings.backend)
        if synthesizer is None:  # its backend failed or isn't loaded yet: the bundled voice speaks
            settings, synthesizer = PiperVoiceSettings(), self.synthesizers[FALLBACK_BACKEND]
        mismatch = voice_mismatch(name, settings, language)
        if mismatch:  # a reply the voice can speak beats one it can only mangle
            language = settings.language
        return VoiceChoice(name, synthesizer, settings, language, persona.speed, mismatch)

    async def release_memory(self) -> None:
        """Between turns: memory a turn used and freed goes back to the system."""
        for synthesizer in self.synthesizers.values():
            await self.tts_thread.call(synthesizer.release_memory)
        await asyncio.to_thread(release_freed_memory)

    async def aclose(self) -> None:
        await self.chat.aclose()
        for synthesizer in self.synthesizers.values():
            await self.tts_thread.call(synthesizer.close)
        await self.stt_thread.call(self.transcriber.close)
        if self.smart_turn is not None:
            await self.turn_thread.call(self.smart_turn.close)
        for thread in (self.stt_thread, self.tts_thread, self.turn_thread):
            thread.shutdown()
