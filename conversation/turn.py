"""One reply: its user utterance, its phase, its work in flight, and its timestamps."""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

TIMESTAMPS = ("speech_start", "speech_end", "endpoint", "stt_done", "llm_first_token",
              "first_chunk_ready", "tts_first_audio", "playback_start")
# `endpoint` is the pause that started the work; `committed` is when the turn was
# known to be over, so playback could start. Work before it is speculative.


class Phase(Enum):
    HELD = "held"  # prepared from a pause, not to be heard until the user is known to be done
    COMMITTED = "committed"  # the user is done: this reply may be heard
    DONE = "done"  # spoken to its end (or nothing to say)
    INTERRUPTED = "interrupted"  # the user cut it off after it began to play
    SUPERSEDED = "superseded"  # cancelled before it was heard: as if it never happened

    @property
    def over(self) -> bool:
        return self in (Phase.DONE, Phase.INTERRUPTED, Phase.SUPERSEDED)


@dataclass
class Turn:
    id: int
    persona: str
    voice: str
    audio: np.ndarray
    speech_start: float
    speech_end: float
    endpoint: float
    longest_pause: float = 0.0  # the longest silence the user went on after, earlier in this turn
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
    resumes: int | None = None  # the id of a reply a false interruption cut; this one finishes it
    command: str | None = None  # a spoken command handled without the LLM
    resumed_reply: str = ""  # the whole reply a resumption completes
    heard_sentences: int = 0
    sentences_started: int = 0  # sent to the synthesizer
    sentences_shown: int = 0  # shown to the person
    barge_in_at: float | None = None
    overheard: bool = False  # heard behind the echo gate while a reply played, answered after it
    playback_stopped_at: float | None = None
    error: str | None = None
    llm_tries: int = 0  # LLM streams the reply took: 2 or 3 when the repeat guard asked again
    phase: Phase = Phase.HELD
    follows: BargeIn | None = None  # the barge-in this turn answers, taken over at its commit
    task: asyncio.Task | None = None  # its work, owned by the agent
    stop: threading.Event = field(default_factory=threading.Event)  # tells the synthesizer's thread
    first_token_ready: asyncio.Event = field(default_factory=asyncio.Event)  # the prompt is read
    first_audio_ready: asyncio.Event = field(default_factory=asyncio.Event)
    _committed: asyncio.Event = field(default_factory=asyncio.Event)
    _on_commit: list = field(default_factory=list)

    # --- how others change the phase ---------------------------------------
    def commit(self, at: float) -> None:
        """The user is done: this reply may be heard."""
        if self.phase is not Phase.HELD:
            return
        self.phase, self.committed = Phase.COMMITTED, at
        self._committed.set()
        for hook in self._on_commit:
            hook()

    def cancel(self, phase: Phase) -> None:
        """End the reply early; its owner stops its work."""
        assert phase in (Phase.INTERRUPTED, Phase.SUPERSEDED)
        if self.phase.over:
            return
        self.phase = phase
        self.stop.set()

    def end(self) -> None:
        """Its owner's last word, once the work is over: done, or never heard at all."""
        self.follows = None  # answered: let the cut reply go, or every turn would keep the one before it
        if self.phase is Phase.COMMITTED:
            self.phase = Phase.DONE
        elif self.phase is Phase.HELD:
            self.phase = Phase.SUPERSEDED

    # --- questions --------------------------------------------------------
    @property
    def held(self) -> bool:
        return self.phase is Phase.HELD

    @property
    def interrupted(self) -> bool:
        return self.phase is Phase.INTERRUPTED

    @property
    def superseded(self) -> bool:
        return self.phase is Phase.SUPERSEDED

    @property
    def in_flight(self) -> bool:
        """Committed and still going: thinking, speaking or playing."""
        return self.phase is Phase.COMMITTED

    def when_committed(self, hook) -> None:
        """Run `hook` at the commit (at once if already committed)."""
        if self.phase is Phase.HELD:
            self._on_commit.append(hook)
        elif self.phase is Phase.COMMITTED:
            hook()

    async def wait_committed(self) -> None:
        await self._committed.wait()

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
            "resumes": self.resumes, "overheard": self.overheard, "command": self.command, "error": self.error,
            "llm_tries": self.llm_tries,
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass
class BargeIn:
    """The user talking over a reply, from the onset until their next turn is committed."""

    reply: Turn
    onset: float
    confirmed: bool = False  # enough speech to cut the reply; until then playback is only paused

    @property
    def carried(self) -> Turn | None:
        """A committed reply cut before it spoke: its user's words join the next utterance."""
        reply = self.reply
        return reply if reply.superseded and reply.committed is not None else None
