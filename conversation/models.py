"""The models of one session, each on its own thread, loaded once."""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Protocol, runtime_checkable

import numpy as np

from audio_io.smart_turn import SmartTurn
from llm.base import ChatModel
from llm.settings import LlmSettings
from stt.whisper import Transcript, WhisperTranscriber
from tts.base import Synthesizer
from tts.errors import VoiceError
from tts.piper import PiperSynthesizer, PiperVoiceSettings

from .config import Config, Persona
from .languages import reply_language, voice_mismatch
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
    def __init__(self, config: Config, notify=log.warning):
        self.config = config
        self.notify = notify  # tells the person about a fallback
        self.stt_thread = ModelThread("whisper")
        self.tts_thread = ModelThread("tts")
        self.turn_thread = ModelThread("smart-turn")
        self.smart_turn = SmartTurn() if config.turn.smart_turn and config.turn.early_end else None
        self.transcriber = WhisperTranscriber(config.stt)
        self.chat = make_chat(config.llm)
        self.synthesizers: dict[str, Synthesizer] = {}

    async def load(self, voices: list[str], progress: LoadProgress | None = None) -> None:
        """Load and warm up every model the given voices need, side by side."""
        steps = [_step(progress, "speech recognition (Whisper)", self.stt_thread.call(self.transcriber.load)),
                 _step(progress, "language model", asyncio.to_thread(self.chat.load)),
                 _step(progress, f"voice {', '.join(voices)}", self._load_voices(voices))]
        if self.smart_turn:
            steps.append(_step(progress, "turn detection (Smart Turn)", self.turn_thread.call(self.smart_turn.load)))
        await asyncio.gather(*steps)

    async def _load_voices(self, names: list[str]) -> None:
        for name in names:
            await self.ensure_voice(name)

    async def ensure_voice(self, name: str) -> None:
        """Load what a voice needs (its backend, its model, its conditioning) before its first sentence."""
        settings = self.config.voices[name]
        if settings.backend == "xtts" and await self._ensure_xtts(name):
            await self.tts_thread.call(self.synthesizers["xtts"].prepare_voice, settings)
            return
        piper_settings = settings if settings.backend == "piper" else PiperVoiceSettings()
        piper = self.synthesizers.setdefault("piper", PiperSynthesizer(self.config.tts.piper_threads))
        await self.tts_thread.call(piper.load, piper_settings)

    async def _ensure_xtts(self, voice: str) -> bool:
        """Load XTTS once; False means the bundled Piper voice stands in (tts.fallback_to_piper)."""
        if "xtts" in self.synthesizers:
            return True
        from tts.xtts import XttsSynthesizer, XttsUnavailableError

        if self.config.tts.xtts is None:
            problem = f"voice {voice!r} uses XTTS but tts.xtts.checkpoint_dir is not set in the config"
        else:
            synthesizer = XttsSynthesizer(self.config.tts.xtts)
            try:
                await self.tts_thread.call(synthesizer.load)
                self.synthesizers["xtts"] = synthesizer
                return True
            except XttsUnavailableError as error:
                problem = str(error)
        if not self.config.tts.fallback_to_piper:
            raise VoiceError(problem)
        self.notify(f"{problem}; speaking with the bundled Piper voice instead")
        return False

    async def transcribe(self, audio: np.ndarray) -> Transcript:
        return await self.stt_thread.call(self.transcriber.transcribe, audio)

    async def voice_complete(self, audio: np.ndarray) -> float | None:
        if self.smart_turn is None:
            return None
        return await self.turn_thread.call(self.smart_turn.probability, audio)

    def voice_for(self, persona: Persona, voice: str, detected_language: str | None) -> VoiceChoice:
        settings = self.config.voices[voice]
        language = reply_language(persona.language, detected_language)
        synthesizer = self.synthesizers.get(settings.backend)
        if synthesizer is None:  # its backend failed to load: fall back to the bundled voice
            settings, synthesizer = PiperVoiceSettings(), self.synthesizers["piper"]
        mismatch = voice_mismatch(voice, settings, language)
        if mismatch:  # a reply the voice can speak beats one it can only mangle
            language = settings.language
        return VoiceChoice(voice, synthesizer, settings, language, persona.speed, mismatch)

    async def aclose(self) -> None:
        await self.chat.aclose()
        for synthesizer in self.synthesizers.values():
            await self.tts_thread.call(synthesizer.close)
        await self.stt_thread.call(self.transcriber.close)
        for thread in (self.stt_thread, self.tts_thread, self.turn_thread):
            thread.shutdown()
