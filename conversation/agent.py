"""The conversation loop: utterances in, spoken replies out, barge-in between.

A reply starts speculatively at the first pause in the user's speech and is
held back from the speaker until the turn is known to be over (the words and
the voice sound finished, or the long hang-over passed). If the user goes on
talking, the held reply is dropped unheard.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from contextlib import aclosing

import numpy as np

from audio_io.clock import InputClock
from audio_io.player import Player
from audio_io.vad import Endpointer, SpeechEnded, SpeechPaused, SpeechResumed, SpeechStarted, VadEvent
from llm.base import Generation, LlmError
from llm.history import History

from .chunker import Chunker
from .commands import Command, parse_command
from .config import Config
from .end_of_turn import is_own_echo, sounds_complete
from .heard import heard_text
from .languages import reply_instruction
from .models import Models
from .reporter import Reporter
from .turn import Turn
from .turn_log import TurnLog
from .voice_out import VoiceChoice, VoiceOut

log = logging.getLogger(__name__)

FIRST_AUDIO_PRIORITY_S = 0.5
APOLOGY = "Sorry, I can't think right now. Please try again in a moment."


class Agent:
    def __init__(self, config: Config, models: Models, player: Player, clock: InputClock,
                 reporter: Reporter, turn_log: TurnLog, persona: str | None = None):
        self.config = config
        self.models = models
        self.player = player
        self.clock = clock
        self.reporter = reporter
        self.turn_log = turn_log
        self.persona_name = persona or config.default_persona
        self._voice_override: str | None = None  # "use the X voice" until the persona changes
        self.history = History(self.persona.system_prompt, config.llm.context_tokens)
        self.endpointer = Endpointer(config.vad)
        self.voice_out = VoiceOut(player, models.tts_thread)
        self._ids = itertools.count(1)  # every reply, speculative ones included
        self._logged = itertools.count(1)  # the turns a person had
        self.current: Turn | None = None  # the reply being prepared, spoken or played
        self._tasks: set[asyncio.Task] = set()
        self._interrupting = False  # playback paused for probable user speech
        self._carry: tuple[np.ndarray, float] | None = None  # words of a reply cancelled before it spoke
        self._resumable: Turn | None = None  # the last reply cut off by the user
        self._last_agent_text = ""  # to recognise our own voice coming back
        self._mismatches_told: set[str] = set()

    @property
    def persona(self):
        return self.config.personas[self.persona_name]

    @property
    def voice_name(self) -> str:
        if self._voice_override in self.config.voices:
            return self._voice_override
        return self.persona.voice

    @property
    def busy(self) -> bool:
        """Still working: file mode keeps feeding silence until this is False."""
        return bool(self._tasks) or self.player.busy or self.endpointer.in_speech

    # --- the audio side --------------------------------------------------
    async def listen(self, frames) -> None:
        """Run the endpointer over the frames; replies run as their own tasks."""
        self.reporter.state("listening")
        t = 0.0
        async for frame, t, echo in frames:
            for event in self.endpointer.process(frame, t, echo=echo):
                self._on_vad(event)
            self._check_interruption()
        for event in self.endpointer.flush(t):
            self._on_vad(event)

    def _on_vad(self, event: VadEvent) -> None:
        if isinstance(event, SpeechStarted):
            self.reporter.state("hearing you")
            if self._speaking() and self.config.barge_in.enabled:
                self._pause_for(event.start)
        elif isinstance(event, SpeechPaused):
            if self._interrupting and not self._interruption_confirmed():
                self._resume_playback()  # a cough or a click: carry on talking
            if not self._speaking():
                self._start_turn(event.audio, event.start, event.end, held=True)
        elif isinstance(event, SpeechResumed):
            self._drop_held()
            if self._interrupting:
                self.player.pause(self.clock.now())
        elif isinstance(event, SpeechEnded):
            self._on_utterance(event)
        else:  # SpeechDropped: too short to be anything
            if self._interrupting:
                self._resume_playback()
            self._drop_held()
            self.reporter.state("speaking" if self._speaking() else "listening")

    # --- barge-in --------------------------------------------------------
    def _speaking(self) -> bool:
        """A committed reply is in flight (thinking, speaking or playing)."""
        turn = self.current
        return turn is not None and turn.committed is not None and not turn.interrupted

    def _pause_for(self, onset: float) -> None:
        if self.current.barge_in_at is None:
            self.current.barge_in_at = onset
        self.player.pause(self.clock.now())
        self._interrupting = True

    def _interruption_confirmed(self) -> bool:
        return self.endpointer.voiced_seconds * 1000 >= self.config.barge_in.min_interruption_ms

    def _check_interruption(self) -> None:
        if self._interrupting and self.endpointer.in_speech and self._interruption_confirmed():
            self._interrupting = False
            self._cancel(self.current, interrupted=True)

    def _resume_playback(self) -> None:
        self._interrupting = False
        if self.current is not None:
            self.current.barge_in_at = None
        self.player.resume()

    def _cancel(self, turn: Turn | None, interrupted: bool) -> None:
        """Stop a reply: flush its audio, stop synthesis, close the LLM stream."""
        if turn is None or turn.interrupted or turn.superseded:
            return
        never_spoke = self.player.playback(turn.id).started_at is None
        if interrupted and not never_spoke:
            turn.interrupted = True
            self._resumable = turn  # if the interruption has no words, the rest is still owed
            turn.playback_stopped_at = self.player.playback(turn.id).paused_at or self.clock.now()
            self.reporter.state("interrupted")
        else:
            turn.superseded = True  # unheard: as if it never happened
            if interrupted and turn.committed is not None:
                self._carry = (turn.audio, turn.speech_start)  # its words join the next utterance
        self.player.clear(below_turn=turn.id + 1)
        turn.cancel.set()
        if turn.task is not None:
            turn.task.cancel()

    def _drop_held(self) -> None:
        if self.current is not None and self.current.committed is None:
            self._cancel(self.current, interrupted=False)

    # --- turns -----------------------------------------------------------
    def _on_utterance(self, utterance: SpeechEnded) -> None:
        turn = self.current
        if turn is not None and turn.committed is None and turn.speech_end == utterance.end:
            self._commit(turn)  # the held reply was for exactly this utterance
            return
        self._drop_held()
        if self._speaking():
            self._cancel(self.current, interrupted=True)  # spoke again before hearing the reply
        self._start_turn(utterance.audio, utterance.start, utterance.end, held=False)

    def _start_turn(self, audio: np.ndarray, start: float, end: float, held: bool) -> None:
        if self._carry is not None:
            audio, start = np.concatenate([self._carry[0], audio]), self._carry[1]
        turn = Turn(id=next(self._ids), persona=self.persona_name, voice=self.voice_name, audio=audio,
                    speech_start=start, speech_end=end, endpoint=self.clock.now())
        self.current = turn
        self._interrupting = False
        if held:
            self.player.hold(turn.id)
        else:
            self._commit(turn)
        turn.task = self._spawn(self._reply(turn))

    def _commit(self, turn: Turn) -> None:
        """The user is done: this reply may be heard."""
        self._carry = None
        turn.committed = self.clock.now()
        turn.released.set()
        self.player.release(turn.id)
        if self.endpointer.in_speech:
            self.endpointer.flush(turn.committed)  # later speech is a new utterance

    def on_text(self, text: str) -> asyncio.Task:
        """A typed turn (text mode): no audio, no STT."""
        self._cancel(self.current, interrupted=True)
        self._carry = None
        now = self.clock.now()
        turn = Turn(id=next(self._ids), persona=self.persona_name, voice=self.voice_name,
                    audio=np.zeros(0, dtype=np.float32), speech_start=now, speech_end=now, endpoint=now,
                    user_text=text.strip())
        self.current = turn
        self._commit(turn)
        turn.task = self._spawn(self._reply(turn))
        return turn.task

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- a reply ---------------------------------------------------------
    async def _reply(self, turn: Turn) -> None:
        judge = None
        try:
            if not turn.user_text:
                await self._transcribe(turn)
                if is_own_echo(turn.user_text, self._last_agent_text):
                    log.info("ignored our own voice: %r", turn.user_text)
                    turn.user_text = ""
            turn.stt_done = self.clock.now()
            if not turn.user_text:
                if self._resumable is not None and turn.committed is not None:
                    await self._resume(turn)  # a false interruption: finish what was cut off
                return  # noise: no turn at all
            self._resumable = None
            command = parse_command(turn.user_text, list(self.config.personas), list(self.config.voices))
            if command is not None:
                await turn.released.wait()  # a command, like a reply, waits for the turn to be over
                await self._obey(turn, command)
                return
            if turn.committed is None and self.config.turn.early_end:
                # On the other core, off the critical path: the reply is prepared meanwhile.
                judge = asyncio.ensure_future(self._commit_when_over(turn))
            await self._answer(turn)
        except asyncio.CancelledError:
            pass
        except Exception as error:  # a failing model must not end the conversation
            log.exception("turn %d failed", turn.id)
            turn.error = f"{type(error).__name__}: {error}"
            self.reporter.error(f"turn {turn.id} failed: {turn.error}")
        finally:
            if judge is not None:
                judge.cancel()
            if (turn.user_text or turn.resumes) and not turn.superseded and turn.committed is not None:
                self._finish(turn)
            if self.current is turn:
                self.current = None
                # A dropped guess while the user talks on: we are still hearing them.
                self.reporter.state("hearing you" if self.endpointer.in_speech else "listening")

    async def _transcribe(self, turn: Turn) -> None:
        transcript = await self.models.transcribe(turn.audio)
        turn.user_text, turn.language = transcript.text, transcript.language

    async def _commit_when_over(self, turn: Turn) -> None:
        """Commit early if the words sound finished, and then the voice does too."""
        if not sounds_complete(turn.user_text):
            return
        if self.config.turn.smart_turn:
            turn.voice_complete = await self.models.voice_complete(turn.audio)
            if turn.voice_complete < self.config.turn.smart_turn_threshold:
                return
        # Never answer a mere breath between words: wait for enough silence first.
        silence = self.clock.now() - turn.speech_end
        await asyncio.sleep(max(0.0, self.config.turn.min_silence_ms / 1000 - silence))
        if turn.committed is None and not turn.superseded:
            self._commit(turn)

    async def _answer(self, turn: Turn) -> None:
        voice = self._voice(turn, turn.language)
        messages = (self.history.messages() + reply_instruction(self.persona.language, voice.language)
                    + [{"role": "user", "content": turn.user_text}])
        persona_llm = self.persona.llm
        generation = Generation(temperature=_first(persona_llm.temperature, self.config.llm.temperature),
                                max_tokens=persona_llm.max_tokens or self.config.llm.max_tokens,
                                model=persona_llm.model)
        sentences: asyncio.Queue = asyncio.Queue(maxsize=2)
        think = asyncio.ensure_future(self._think(turn, messages, generation, sentences))
        announce = asyncio.ensure_future(self._announce(turn))
        try:
            try:
                await self.voice_out.speak(turn.id, sentences, voice, turn.cancel,
                                           on_sentence=lambda index, text: self._show_spoken(turn, index + 1),
                                           on_first_audio=lambda: self._first_audio(turn))
                await think  # re-raises an LLM failure
            except LlmError as error:
                turn.error = str(error)
                await turn.released.wait()
                self.reporter.error(str(error))
                self.reporter.state("speaking")
                turn.sentences.append(APOLOGY)
                self._show_spoken(turn, len(turn.sentences))
                await self.voice_out.say(turn.id, [APOLOGY], voice, turn.cancel)
            await announce
            await self._played()
        finally:
            think.cancel()
            announce.cancel()

    def _first_audio(self, turn: Turn) -> None:
        if turn.tts_first_audio is None:
            turn.tts_first_audio = self.clock.now()
            turn.first_audio_ready.set()
            if turn.released.is_set():
                self.reporter.state("speaking")

    def _show_spoken(self, turn: Turn, started: int) -> None:
        """Show the reply sentence by sentence as it is voiced, once it is no longer speculative."""
        turn.sentences_started = max(turn.sentences_started, started)
        if not turn.released.is_set():
            return
        while turn.sentences_shown < turn.sentences_started:
            self.reporter.agent(turn.sentences[turn.sentences_shown])
            turn.sentences_shown += 1

    def _voice(self, turn: Turn, detected_language: str | None) -> VoiceChoice:
        """The voice for a reply; a language it can't speak is said once, not every turn."""
        voice = self.models.voice_for(self.persona, self.voice_name, detected_language)
        turn.reply_language = voice.language
        if voice.mismatch and voice.mismatch not in self._mismatches_told:
            self._mismatches_told.add(voice.mismatch)
            self.reporter.error(voice.mismatch)
        return voice

    async def _played(self) -> None:
        while self.player.busy:
            await asyncio.sleep(0.02)

    async def _say_fixed(self, turn: Turn, sentences: list[str], language: str | None) -> None:
        """Speak sentences that need no LLM (a confirmation, a resumed reply)."""
        turn.sentences = list(sentences)
        turn.llm_first_token = turn.first_chunk_ready = self.clock.now()
        voice = self._voice(turn, language)
        await self.voice_out.say(turn.id, sentences, voice, turn.cancel,
                                 on_sentence=lambda index, text: self._show_spoken(turn, index + 1),
                                 on_first_audio=lambda: self._first_audio(turn))
        await self._played()

    async def _obey(self, turn: Turn, command: Command) -> None:
        """Switch persona or voice, and confirm in the new voice."""
        if command.kind == "persona":
            self.switch_persona(command.name)
            reply = f"Switched to {command.name.replace('_', ' ')}."
        else:
            self.switch_voice(command.name)
            reply = f"Now using the {command.name.replace('_', ' ')} voice."
        await self.models.ensure_voice(self.voice_name)
        turn.persona, turn.voice, turn.command = self.persona_name, self.voice_name, f"{command.kind}:{command.name}"
        self.reporter.user(turn)
        await self._say_fixed(turn, [reply], turn.language)

    def switch_persona(self, name: str) -> None:
        """Talk as another persona from the next reply on; the conversation so far is kept."""
        self.persona_name = name
        self._voice_override = None
        self.history.system_prompt = self.persona.system_prompt
        self.reporter.info(f"persona: {name} (voice {self.voice_name})")

    def switch_voice(self, name: str) -> None:
        self._voice_override = name
        self.reporter.info(f"voice: {name}")

    def apply_config(self, config: Config) -> None:
        """A reloaded config.yaml takes effect between turns."""
        self.config = config
        if self.persona_name not in config.personas:
            self.persona_name = config.default_persona
        self.history.system_prompt = self.persona.system_prompt
        self.history.context_tokens = config.llm.context_tokens
        if not self.endpointer.in_speech:
            self.endpointer = Endpointer(config.vad)

    async def _resume(self, turn: Turn) -> None:
        """Say the rest of the reply a noise cut off, from the start of the cut sentence."""
        cut = self._resumable
        self._resumable = None
        rest = cut.sentences[cut.heard_sentences:]
        if not rest:
            return
        turn.resumes = cut.id
        turn.resumed_reply = cut.agent_text
        self.reporter.state("speaking")
        await self._say_fixed(turn, rest, cut.language)

    async def _announce(self, turn: Turn) -> None:
        """Show the transcript and the reply once they are no longer speculative."""
        await turn.released.wait()
        self.reporter.user(turn)
        self._show_spoken(turn, turn.sentences_started)
        # The turn is over; until the reply's first audio is ready, the agent is thinking.
        self.reporter.state("speaking" if turn.first_audio_ready.is_set() else "thinking")

    async def _think(self, turn: Turn, messages, generation: Generation, sentences: asyncio.Queue) -> None:
        chunker = Chunker(self.config.chunker.max_sentence_chars, self.config.chunker.first_clause_words)
        try:
            async with aclosing(self.models.chat.stream(messages, generation)) as pieces:
                async for piece in pieces:
                    if turn.llm_first_token is None:
                        turn.llm_first_token = self.clock.now()
                    for sentence in chunker.feed(piece):
                        await self._queue_sentence(turn, sentence, sentences)
            for sentence in chunker.flush():
                await self._queue_sentence(turn, sentence, sentences)
            if not turn.sentences:
                raise LlmError("the LLM gave an empty reply")
        finally:
            await sentences.put(None)

    async def _queue_sentence(self, turn: Turn, sentence: str, sentences: asyncio.Queue) -> None:
        first = turn.first_chunk_ready is None
        if first:
            turn.first_chunk_ready = self.clock.now()
        turn.sentences.append(sentence)
        await sentences.put(sentence)
        if first:
            # Two cores: let the first words be synthesized before generating more.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(turn.first_audio_ready.wait(), FIRST_AUDIO_PRIORITY_S)

    def _finish(self, turn: Turn) -> None:
        playback = self.player.playback(turn.id)
        turn.playback_start = playback.started_at
        turn.heard_text = heard_text(turn.sentences, playback) if turn.interrupted else turn.agent_text
        turn.heard_sentences = sum(1 for i in range(len(turn.sentences)) if playback.heard_fraction(i) >= 0.98)
        self.player.forget(turn.id)
        self._last_agent_text = turn.agent_text
        if turn.resumes:
            self.history.replace_last_assistant(turn.resumed_reply)
        else:
            self.history.add_user(turn.user_text)
            self.history.add_assistant(turn.heard_text, interrupted=turn.interrupted)
        record = {**turn.record(), "turn": next(self._logged)}
        self.turn_log.write(record)
        self.reporter.turn_done(record)

    # --- lifecycle -------------------------------------------------------
    async def prepare(self) -> None:
        """Warm the LLM with this persona's system prompt, so the first reply starts fast."""
        await self.models.chat.warm(self.history.messages())

    async def greet(self) -> None:
        if self.persona.greeting:
            voice = self.models.voice_for(self.persona, self.voice_name, None)
            self.reporter.agent(self.persona.greeting)
            self.reporter.state("speaking")
            await self.voice_out.say(0, [self.persona.greeting], voice, threading.Event())

    async def drain(self) -> None:
        """Wait for every reply in flight to finish."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def cancel_all(self) -> None:
        self._cancel(self.current, interrupted=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _first(*values):
    return next(v for v in values if v is not None)
