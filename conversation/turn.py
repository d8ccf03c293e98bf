"""One reply: its user utterance, its work in flight, and its timestamps."""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

import numpy as np

TIMESTAMPS = ("speech_start", "speech_end", "endpoint", "stt_done", "llm_first_token",
              "first_chunk_ready", "tts_first_audio", "playback_start")
# `endpoint` is the pause that started the work; `committed` is when the turn was
# known to be over, so playback could start. Work before it is speculative.


@dataclass
class Turn:
    id: int
    persona: str
    voice: str
    audio: np.ndarray
    speech_start: float
    speech_end: float
    endpoint: float
    user_text: str = ""
    language: str | None = None  # what the user spoke, as Whisper heard it
    reply_language: str | None = None  # what the reply was asked for and spoken in
    stt_done: float | None = None
    llm_first_token: float | None = None
    first_chunk_ready: float | None = None
    tts_first_audio: float | None = None
    playback_start: float | None = None
    committed: float | None = None
    voice_complete: float | None = None  # Smart Turn's probability
    sentences: list[str] = field(default_factory=list)  # queued for speech, in order
    heard_text: str = ""
    interrupted: bool = False
    superseded: bool = False  # cancelled before it spoke; its audio went into the next turn
    resumes: int | None = None  # the id of a reply a false interruption cut; this one finishes it
    command: str | None = None  # a spoken command handled without the LLM
    resumed_reply: str = ""  # the whole reply a resumption completes
    heard_sentences: int = 0
    sentences_started: int = 0  # sent to the synthesizer
    sentences_shown: int = 0  # shown to the person
    barge_in_at: float | None = None
    playback_stopped_at: float | None = None
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    first_audio_ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None

    @property
    def agent_text(self) -> str:
        return " ".join(self.sentences)

    def record(self) -> dict:
        times = {name: _rounded(getattr(self, name)) for name in TIMESTAMPS}
        v2v = None
        if self.playback_start is not None:
            v2v = round((self.playback_start - self.speech_end) * 1000)
        return {
            "turn": self.id, "persona": self.persona, "voice": self.voice,
            "user_text": self.user_text, "agent_text": self.agent_text, "heard_text": self.heard_text,
            "interrupted": self.interrupted, "language": self.language,
            "reply_language": self.reply_language, **times,
            "committed": _rounded(self.committed), "voice_complete": _rounded(self.voice_complete),
            "voice_to_voice_ms": v2v,
            "barge_in_at": _rounded(self.barge_in_at), "playback_stopped_at": _rounded(self.playback_stopped_at),
            "resumes": self.resumes, "command": self.command, "error": self.error,
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
