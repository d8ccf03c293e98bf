"""The models of one session, each on its own thread, loaded once."""
from __future__ import annotations

import asyncio
import logging

import numpy as np

from audio_io.smart_turn import SmartTurn
from llm.base import ChatModel
from llm.settings import LlmSettings
from stt.whisper import Transcript, WhisperTranscriber
from tts.base import Synthesizer
from tts.piper import PiperSynthesizer, PiperVoiceSettings

from .config import Config, Persona
from .model_thread import ModelThread
from .voice_out import VoiceChoice

log = logging.getLogger(__name__)


def make_chat(settings: LlmSettings) -> ChatModel:
    backend = settings.backend
    if backend == "auto":
        backend = "openai" if settings.base_url else "embedded"
    if backend == "openai":
        from llm.openai_chat import OpenAIChat

        return OpenAIChat(settings)
    from llm.embedded import EmbeddedChat

    return EmbeddedChat(settings)


class Models:
    def __init__(self, config: Config):
        self.config = config
        self.stt_thread = ModelThread("whisper")
        self.tts_thread = ModelThread("tts")
        self.turn_thread = ModelThread("smart-turn")
        self.smart_turn = SmartTurn() if config.turn.smart_turn and config.turn.early_end else None
        self.transcriber = WhisperTranscriber(config.stt)
        self.chat = make_chat(config.llm)
        self.synthesizers: dict[str, Synthesizer] = {}

    async def load(self, voices: list[str]) -> None:
        """Load and warm up every model the given voices need, side by side."""
        await asyncio.gather(
            self.stt_thread.call(self.transcriber.load),
            asyncio.to_thread(self.chat.load),
            self._load_voices(voices),
            self.turn_thread.call(self.smart_turn.load) if self.smart_turn else asyncio.sleep(0))

    async def _load_voices(self, names: list[str]) -> None:
        for name in names:
            settings = self.config.voices[name]
            if settings.backend == "piper":
                piper = self.synthesizers.setdefault("piper", PiperSynthesizer(self.config.tts.piper_threads))
                await self.tts_thread.call(piper.load, settings)

    async def transcribe(self, audio: np.ndarray) -> Transcript:
        return await self.stt_thread.call(self.transcriber.transcribe, audio)

    async def voice_complete(self, audio: np.ndarray) -> float | None:
        if self.smart_turn is None:
            return None
        return await self.turn_thread.call(self.smart_turn.probability, audio)

    def voice_for(self, persona: Persona, detected_language: str | None) -> VoiceChoice:
        settings = self.config.voices[persona.voice]
        language = detected_language if persona.language == "auto" else persona.language
        synthesizer = self.synthesizers.get(settings.backend)
        if synthesizer is None:  # its backend failed to load: fall back to the bundled voice
            settings, synthesizer = PiperVoiceSettings(), self.synthesizers["piper"]
        return VoiceChoice(persona.voice, synthesizer, settings, language, persona.speed)

    async def aclose(self) -> None:
        await self.chat.aclose()
        for synthesizer in self.synthesizers.values():
            await self.tts_thread.call(synthesizer.close)
        await self.stt_thread.call(self.transcriber.close)
        for thread in (self.stt_thread, self.tts_thread, self.turn_thread):
            thread.shutdown()
