"""The conversation loop: utterances in, spoken replies out, barge-in between.

A reply starts speculatively at the first pause in the user's speech and is
held back from the speaker until the turn is known to be over (the words and
the voice sound finished, or the long hang-over passed). If the user goes on
talking, the held reply is dropped unheard.

The Agent keeps two things: the current turn and the barge-in in progress.
Each turn's work runs as one task, owned here, that owns its own subtasks
(conversation/responder.py); a turn's phase changes only through
`Turn.commit()` and `Turn.cancel()`.
"""
from __future__ import annotations

import asyncio
import itertools
import threading

import numpy as np

from audio_io.player import Player
from audio_io.vad import (Endpointer, SpeechEnded, SpeechOverheard, SpeechPaused, SpeechResumed, SpeechStarted,
                          VadEvent)

from .config import Config
from .dialogue import Dialogue
from .models import Models
from .reporter import Reporter
from .responder import Responder
from .turn import BargeIn, Phase, Turn
from .turn_log import TurnLog
from .voice_out import Outlet


class Agent:
    def __init__(self, config: Config, models: Models, player: Player, clock, reporter: Reporter,
                 turn_log: TurnLog, persona: str | None = None):
        self.dialogue = Dialogue(config, persona)
        self.models = models
        self.player = player
        self.clock = clock
        self.reporter = reporter
        self.turn_log = turn_log
        self.endpointer = Endpointer(config.vad)
        self.responder = Responder(self.dialogue, models, player, clock, reporter, turn_log, self._commit)
        self.current: Turn | None = None  # the reply being prepared, spoken or played
        self.barge_in: BargeIn | None = None  # the user over a reply, until their next turn is committed
        self._overheard: list[SpeechOverheard] = []  # heard behind the echo gate; answered once the reply ends
        self._ids = itertools.count(1)  # every reply, speculative ones included
        self._tasks: set[asyncio.Task] = set()  # one per turn

    # --- who is talking ----------------------------------------------------
    @property
    def config(self) -> Config:
        return self.dialogue.config

    @property
    def persona_name(self) -> str:
        return self.dialogue.persona_name

    @property
    def voice_name(self) -> str:
        return self.dialogue.voice_name

    @property
    def busy(self) -> bool:
        """Still working: file mode keeps feeding silence until this is False."""
        return bool(self._tasks or self._overheard) or self.player.busy or self.endpointer.in_speech \
            or self.endpointer.overhearing

    @property
    def idle(self) -> bool:
        """Between turns: a reloaded config may be applied."""
        return self.current is None and not self.endpointer.in_speech

    # --- the audio side ----------------------------------------------------
    async def listen(self, frames) -> None:
        """Run the endpointer over the frames; replies run as their own tasks."""
        self.reporter.state("listening")
        t = 0.0
        async for frame, t, echo in frames:
            for event in self.endpointer.process(frame, t, echo=echo):
                self._on_vad(event)
            self._confirm_barge_in()
            self._answer_overheard()
        for event in self.endpointer.flush(t):
            self._on_vad(event)

    def _on_vad(self, event: VadEvent) -> None:
        pending = self.barge_in is not None and not self.barge_in.confirmed
        if isinstance(event, SpeechStarted):
            self.reporter.state("hearing you")
            if self._speaking() and self.config.barge_in.enabled:
                self._pause_for(event.start)
        elif isinstance(event, SpeechPaused):
            if pending and not self._interruption_long_enough():
                self._resume_playback()  # a cough or a click: carry on talking
            if not self._speaking():
                self._start_turn(event.audio, event.start, event.end, held=True, longest_pause=event.longest_pause)
        elif isinstance(event, SpeechResumed):
            self._drop_held()
            if self._speaking() and self.config.barge_in.enabled:
                # "Wait, ..." : a word too short to interrupt resumed the reply, but the user goes on.
                self._pause_for(event.start)
        elif isinstance(event, SpeechEnded):
            self._on_utterance(event)
        elif isinstance(event, SpeechOverheard):
            self._overheard.append(event)
        else:  # SpeechDropped: too short to be anything
            if pending:
                self._resume_playback()
            self._drop_held()
            self.reporter.state("speaking" if self._speaking() else "listening")

    # --- barge-in ----------------------------------------------------------
    def _speaking(self) -> bool:
        """A committed reply is in flight (thinking, speaking or playing)."""
        return self.current is not None and self.current.in_flight

    def _barge_in_on_current(self, onset: float) -> BargeIn:
        """The barge-in over the reply in flight, begun at `onset` unless one already is."""
        if self.barge_in is None or self.barge_in.reply is not self.current:
            self.barge_in = BargeIn(self.current, onset)
        return self.barge_in

    def _pause_for(self, onset: float) -> None:
        barge_in = self._barge_in_on_current(onset)
        barge_in.reply.barge_in_at = barge_in.onset
        self.player.pause(self.clock.now())

    def _interruption_long_enough(self) -> bool:
        return self.endpointer.voiced_seconds * 1000 >= self.config.barge_in.min_interruption_ms

    def _confirm_barge_in(self) -> None:
        barge_in = self.barge_in
        if barge_in is not None and not barge_in.confirmed and self.endpointer.in_speech \
                and self._interruption_long_enough():
            self._cancel_by_user(barge_in)

    def _resume_playback(self) -> None:
        self.barge_in.reply.barge_in_at = None
        self.barge_in = None
        self.player.resume()

    def _cancel_by_user(self, barge_in: BargeIn) -> None:
        """The user took the floor: cut the reply; what it owes them goes with the barge-in."""
        reply = barge_in.reply
        barge_in.confirmed = True
        playback = self.player.playback(reply.id)
        if reply.phase.over:  # it ended on its own as the user began: nothing left to cut
            self.player.resume()
        elif playback.started_at is None:
            self._cancel(reply, Phase.SUPERSEDED)  # unheard: its words join the user's next utterance
        else:
            reply.playback_stopped_at = playback.paused_at or self.clock.now()
            self._cancel(reply, Phase.INTERRUPTED)  # if the interruption has no words, the rest is owed
            self.reporter.state("interrupted")

    def _cancel(self, turn: Turn, phase: Phase) -> None:
        """Stop a reply: flush its audio; its task stops synthesis and closes the LLM stream."""
        if turn.phase.over:
            return
        turn.cancel(phase)
        self.player.clear(below_turn=turn.id + 1)
        if turn.task is not None:
            turn.task.cancel()

    def _drop_held(self) -> None:
        if self.current is not None and self.current.held:
            self._cancel(self.current, Phase.SUPERSEDED)

    def _answer_overheard(self) -> None:
        """Speech from behind the echo gate becomes a turn once the agent is quiet: the user, or our echo."""
        if not self._overheard or self.current is not None or self.endpointer.in_speech or self.player.busy:
            return
        heard = self._overheard.pop(0)
        self._start_turn(heard.audio, heard.start, heard.end, held=False)
        self.current.overheard = True

    # --- turns -------------------------------------------------------------
    def _on_utterance(self, utterance: SpeechEnded) -> None:
        turn = self.current
        if turn is not None and turn.held and turn.speech_end == utterance.end:
            self._commit(turn)  # the held reply was for exactly this utterance
            return
        self._drop_held()
        if self._speaking():  # spoke again before hearing the reply out
            self._cancel_by_user(self._barge_in_on_current(utterance.start))
        self._start_turn(utterance.audio, utterance.start, utterance.end, held=False)

    def _start_turn(self, audio: np.ndarray, start: float, end: float, held: bool, text: str = "",
                    longest_pause: float = 0.0) -> None:
        carried = self.barge_in.carried if self.barge_in is not None else None
        if carried is not None:
            audio, start = np.concatenate([carried.audio, audio]), carried.speech_start
        turn = Turn(id=next(self._ids), persona=self.persona_name, voice=self.voice_name, audio=audio,
                    speech_start=start, speech_end=end, endpoint=self.clock.now(), user_text=text,
                    longest_pause=longest_pause)
        self.current = turn
        turn.task = asyncio.ensure_future(self._run(turn))
        self._tasks.add(turn.task)
        turn.task.add_done_callback(self._tasks.discard)
        if not held:
            self._commit(turn)

    def _commit(self, turn: Turn) -> None:
        """The user is done: this reply may be heard, and it answers any barge-in before it."""
        if not turn.held:
            return
        turn.follows, self.barge_in = self.barge_in, None
        turn.commit(self.clock.now())
        if self.endpointer.in_speech:
            self.endpointer.flush(turn.committed)  # later speech is a new utterance

    async def _run(self, turn: Turn) -> None:
        try:
            await self.responder.respond(turn)
            await self.models.release_memory()
        finally:
            if self.current is turn:
                self.current = None
                # A dropped guess while the user talks on: we are still hearing them.
                self.reporter.state("hearing you" if self.endpointer.in_speech else "listening")

    def on_text(self, text: str) -> asyncio.Task:
        """A typed turn (text mode): no audio, no STT; it cuts off any reply in flight."""
        self._stop_current()
        now = self.clock.now()
        self._start_turn(np.zeros(0, dtype=np.float32), now, now, held=False, text=text.strip())
        return self.current.task

    # --- persona, voice and config -------------------------------------------
    def switch_persona(self, name: str) -> None:
        self.dialogue.switch_persona(name)
        self.reporter.info(f"persona: {name} (voice {self.voice_name})")

    def switch_voice(self, name: str) -> None:
        self.dialogue.switch_voice(name)
        self.reporter.info(f"voice: {name}")

    async def load_voice(self, name: str) -> None:
        """Load what a voice needs before its first sentence."""
        await self.models.ensure_voice(name, self.config.voices[name])

    async def apply_config(self, config: Config) -> None:
        """A reloaded config.yaml, between turns (see reload.py for what may change live)."""
        self.dialogue.apply(config)
        self.endpointer = Endpointer(config.vad)
        if config.turn.early_end and config.turn.smart_turn:
            await self.models.ensure_smart_turn()
        await self.load_voice(self.voice_name)

    # --- lifecycle -----------------------------------------------------------
    async def prepare(self) -> None:
        """Warm the LLM with this persona's system prompt, so the first reply starts fast."""
        await self.models.chat.warm(self.dialogue.history.messages())

    async def greet(self) -> None:
        persona = self.dialogue.persona
        if persona.greeting:
            voice = self.models.voice_for(persona, self.voice_name, self.dialogue.voice_settings, None)
            self.reporter.agent(persona.greeting)
            self.reporter.state("speaking")
            await self.responder.voice_out.say(Outlet(self.player, 0), [persona.greeting], voice, threading.Event())

    async def drain(self) -> None:
        """Wait for every reply in flight to finish."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _stop_current(self) -> None:
        """Cut off whatever reply is in flight, as if the user had talked over it."""
        if self._speaking():
            self._cancel_by_user(BargeIn(self.current, self.clock.now()))
        elif self.current is not None:
            self._cancel(self.current, Phase.SUPERSEDED)
        self.barge_in = None

    async def cancel_all(self) -> None:
        self._stop_current()
        for task in list(self._tasks):
            task.cancel()
        await self.drain()
