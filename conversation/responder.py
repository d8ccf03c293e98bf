"""One turn's work, start to end: transcribe, then obey a command or answer aloud.

Everything a reply starts (the LLM stream, the synthesis, the end-of-turn
judge, the announcement) runs in the reply's TaskScope and is awaited before
the reply ends, however it ends.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import aclosing
from functools import partial
from typing import AsyncIterator, Callable

from audio_io.player import Player
from llm.base import Generation, LlmError, Message

from .chunker import Chunker
from .commands import Command, parse_command
from .config import Persona
from .dialogue import Dialogue
from .end_of_turn import is_own_echo, plainly_finished, required_silence, sounds_complete
from .heard import heard_text
from .models import Models
from .repeat_guard import Draft, RepeatGuard
from .reporter import Reporter
from .task_scope import TaskScope
from .turn import Turn
from .turn_log import TurnLog
from .voice_out import Outlet, VoiceChoice, VoiceOut

log = logging.getLogger(__name__)

FIRST_AUDIO_PRIORITY_S = 0.5
APOLOGY = "Sorry, I can't think right now. Please try again in a moment."


class Responder:
    def __init__(self, dialogue: Dialogue, models: Models, player: Player, clock, reporter: Reporter,
                 turn_log: TurnLog, commit: Callable[[Turn], None]):
        self.dialogue = dialogue
        self.models = models
        self.player = player
        self.clock = clock
        self.reporter = reporter
        self.turn_log = turn_log
        self.commit = commit  # the agent's: ends the user's turn early
        self.voice_out = VoiceOut(player, models.tts_thread)
        self._mismatches_told: set[str] = set()
        self._turns_logged = 0  # the turns a person had (speculative replies aside)

    async def respond(self, turn: Turn) -> None:
        try:
            async with TaskScope() as scope:
                await self._work(turn, scope)
        except asyncio.CancelledError:
            pass  # the agent cancelled this reply; the scope has stopped its work
        except Exception as error:  # a failing model must not end the conversation
            log.exception("turn %d failed", turn.id)
            turn.error = f"{type(error).__name__}: {error}"
            self.reporter.error(f"turn {turn.id} failed: {turn.error}")
        finally:
            heard = bool(turn.user_text or turn.resumes) and turn.committed is not None and not turn.superseded
            if heard:
                self._finish(turn)
            turn.end()
        if heard:
            # Read the history as it now stands while the user is still listening, talking or thinking,
            # not when their next turn needs an answer: the reply as heard is not the tokens generated
            # (cut short, joined across line breaks, stripped of markdown, a second try's nudge left
            # out), a trim changed the prompt's start, a command's exchange joined it unread.
            await self._read_ahead(self.dialogue.history.messages())

    async def _read_ahead(self, messages: list[Message]) -> None:
        """Have the LLM read the start of its next prompt now."""
        try:
            await self.models.chat.warm(messages)
        except Exception as error:  # only a head start: the next reply reports a real failure
            log.warning("warming the prompt failed: %s", error)

    async def _work(self, turn: Turn, scope: TaskScope) -> None:
        if not turn.user_text:
            transcript = await self.models.transcribe(turn.audio)
            turn.user_text, turn.language = transcript.text, transcript.language
            if is_own_echo(turn.user_text, self.dialogue.last_reply):
                log.info("ignored our own voice: %r", turn.user_text)
                turn.user_text = ""
        turn.stt_done = self.clock.now()
        if not turn.user_text:
            cut = turn.follows.reply if turn.follows is not None else None
            if cut is not None and cut.interrupted and turn.in_flight:
                await self._resume(turn, cut)  # a false interruption: finish what was cut off
            return  # noise: no turn at all
        config = self.dialogue.config
        command = parse_command(turn.user_text, list(config.personas), list(config.voices))
        if turn.held and config.turn.early_end:
            # On the other core, while the reply is prepared.
            scope.start(self._commit_when_over(turn, command is not None))
        if command is not None:
            await self._obey(turn, command, scope)
            return
        await self._answer(turn, scope)

    async def _commit_when_over(self, turn: Turn, is_command: bool) -> None:
        """Commit early if the words sound finished, and then the voice does too (unless the words are plain)."""
        if not sounds_complete(turn.user_text):
            return
        settings = self.dialogue.config.turn
        # Never answer a mere breath between words: wait for enough silence first.
        earliest_end = turn.speech_end + required_silence(
            turn.user_text, settings.min_silence_ms / 1000, turn.longest_pause, settings.statement_silence_ms / 1000,
            is_command)
        if settings.smart_turn and not plainly_finished(turn.user_text, is_command):
            # Smart Turn takes about 50 ms; beside the LLM reading its prompt on the other core it made the
            # first token 63% slower (p50 180 -> 294 ms). Judged once the first audio was ready, it held the
            # commit some 80 ms after it; once the prompt is read, it runs while the reply is generated.
            await turn.first_token_ready.wait()
            turn.voice_complete = await self.models.voice_complete(turn.audio)
            if turn.voice_complete is not None and turn.voice_complete < settings.smart_turn_threshold:
                return
        await asyncio.sleep(max(0.0, earliest_end - self.clock.now()))
        self.commit(turn)

    async def _answer(self, turn: Turn, scope: TaskScope) -> None:
        voice = self._voice(turn, turn.language)
        messages = self.dialogue.prompt(turn.user_text, voice.language)
        sentences: asyncio.Queue = asyncio.Queue(maxsize=2)
        outlet = self._outlet(turn)
        think = scope.start(self._think(turn, messages, self.dialogue.generation(), sentences))
        announce = scope.start(self._announce(turn))
        await self.voice_out.speak(outlet, sentences, voice, turn.stop, *self._progress(turn))
        failure = await think
        if failure is not None:
            turn.error = str(failure)
            await turn.wait_committed()
            self.reporter.error(str(failure))
            self.reporter.state("speaking")
            turn.sentences.append(APOLOGY)
            self._show_spoken(turn, len(turn.sentences))
            await self.voice_out.say(outlet, [APOLOGY], voice, turn.stop)
        await announce
        if failure is None:
            # Every word is synthesized: while they play, read the history as it stands if they are heard
            # to the end. After a trim the whole history is new, and read once the reply had played it
            # could still be read when the next question came, its first token 600 ms late.
            scope.start(self._read_ahead(self.dialogue.history_after(turn.user_text, turn.agent_text)))
        await self._played()

    async def _think(self, turn: Turn, messages: list[Message], generation: Generation,
                     sentences: asyncio.Queue) -> LlmError | None:
        """Stream the reply into speakable sentences, repeats left out; a failure is returned for the apology."""
        config = self.dialogue.config.chunker
        guard = RepeatGuard.for_prompt(messages, self.dialogue.replies, self.dialogue.nothing_new())
        fresh = guard.fresh_sentences(partial(self._stream, turn), messages, generation,
                                      lambda: Chunker(config.max_sentence_chars, config.first_clause_words),
                                      drafts=True)
        failure = None
        try:
            async with aclosing(fresh):
                async for sentence in fresh:
                    if isinstance(sentence, Draft):
                        await sentences.put(sentence)  # synthesized ahead, heard only once admitted
                    else:
                        await self._queue_sentence(turn, sentence, sentences)
            turn.llm_tries = guard.attempts
            if not turn.sentences:
                failure = LlmError("the LLM gave an empty reply")
        except LlmError as error:
            failure = error
        # Not in a `finally`: once cancelled, nobody reads the queue, and a put could wait forever.
        await sentences.put(None)
        return failure

    async def _stream(self, turn: Turn, messages: list[Message], generation: Generation) -> AsyncIterator[str]:
        """The LLM's reply as it comes (a second try too), noting when the turn's first token came."""
        async with aclosing(self.models.chat.stream(messages, generation)) as pieces:
            async for piece in pieces:
                if turn.llm_first_token is None:
                    turn.llm_first_token = self.clock.now()
                    turn.first_token_ready.set()
                yield piece

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

    async def _announce(self, turn: Turn) -> None:
        """Show the transcript and the reply once they are no longer speculative."""
        await turn.wait_committed()
        self.reporter.user(turn)
        self._show_spoken(turn, turn.sentences_started)
        # The turn is over; until the reply's first audio is ready, the agent is thinking.
        self.reporter.state("speaking" if turn.first_audio_ready.is_set() else "thinking")

    async def _obey(self, turn: Turn, command: Command, scope: TaskScope) -> None:
        """Switch persona or voice, and confirm in the new voice.

        The confirmation is synthesized while the turn may still go on, and
        heard at the commit (some 80 ms sooner); the switch itself waits for it.
        """
        persona, voice_name = self.dialogue.speaker_after(command)
        settings = self.dialogue.config.voices[voice_name]
        await self.models.ensure_voice(voice_name, settings)
        voice = self._voice(turn, turn.language, persona, voice_name)
        reply = (f"Switched to {command.name.replace('_', ' ')}." if command.kind == "persona"
                 else f"Now using the {command.name.replace('_', ' ')} voice.")
        saying = scope.start(self._say_fixed(turn, [reply], voice))
        await turn.wait_committed()
        self.dialogue.obey(command)
        if command.kind == "persona":
            # A new system prompt: the LLM reads it while the switch is confirmed aloud.
            scope.start(self._read_ahead(self.dialogue.history.messages()))
        turn.persona, turn.voice = self.dialogue.persona_name, self.dialogue.voice_name
        turn.command = f"{command.kind}:{command.name}"
        await self._announce(turn)
        await saying
        await self._played()  # synthesized while held, it began to play only at the commit

    async def _resume(self, turn: Turn, cut: Turn) -> None:
        """Say the rest of the reply a noise cut off, from the start of the cut sentence."""
        rest = cut.sentences[cut.heard_sentences:]
        if not rest:
            return
        turn.resumes = cut.id
        turn.resumed_reply = cut.agent_text
        self.reporter.state("speaking")
        await self._say_fixed(turn, rest, self._voice(turn, cut.language))

    async def _say_fixed(self, turn: Turn, sentences: list[str], voice: VoiceChoice) -> None:
        """Speak sentences that need no LLM (a confirmation, a resumed reply)."""
        turn.sentences = list(sentences)
        turn.llm_first_token = turn.first_chunk_ready = self.clock.now()
        await self.voice_out.say(self._outlet(turn), sentences, voice, turn.stop, *self._progress(turn))
        await self._played()

    def _outlet(self, turn: Turn) -> Outlet:
        outlet = Outlet(self.player, turn.id, lambda: turn.held)
        turn.when_committed(outlet.flush)
        return outlet

    def _progress(self, turn: Turn) -> tuple[Callable, Callable]:
        return (lambda index, text: self._show_spoken(turn, index + 1)), (lambda: self._first_audio(turn))

    def _first_audio(self, turn: Turn) -> None:
        if turn.tts_first_audio is None:
            turn.tts_first_audio = self.clock.now()
            turn.first_audio_ready.set()
            if not turn.held:
                self.reporter.state("speaking")

    def _show_spoken(self, turn: Turn, started: int) -> None:
        """Show the reply sentence by sentence as it is voiced, once it is no longer speculative."""
        turn.sentences_started = max(turn.sentences_started, started)
        if turn.held:
            return
        while turn.sentences_shown < turn.sentences_started:
            self.reporter.agent(turn.sentences[turn.sentences_shown])
            turn.sentences_shown += 1

    def _voice(self, turn: Turn, detected_language: str | None, persona: Persona | None = None,
               voice_name: str | None = None) -> VoiceChoice:
        """The voice for a reply (the current persona's unless told); a language it can't speak is said once."""
        dialogue = self.dialogue
        persona, voice_name = persona or dialogue.persona, voice_name or dialogue.voice_name
        voice = self.models.voice_for(persona, voice_name, dialogue.config.voices[voice_name], detected_language)
        turn.reply_language = voice.language
        if voice.mismatch and voice.mismatch not in self._mismatches_told:
            self._mismatches_told.add(voice.mismatch)
            self.reporter.error(voice.mismatch)
        return voice

    async def _played(self) -> None:
        while self.player.busy:
            await asyncio.sleep(0.02)

    def _finish(self, turn: Turn) -> None:
        playback = self.player.playback(turn.id)
        turn.playback_start = playback.started_at
        turn.heard_text = heard_text(turn.sentences, playback) if turn.interrupted else turn.agent_text
        turn.heard_sentences = sum(1 for i in range(len(turn.sentences)) if playback.heard_fraction(i) >= 0.98)
        self.player.forget(turn.id)
        self.dialogue.last_reply = turn.agent_text
        if turn.resumes:
            self.dialogue.resume_reply(turn.resumed_reply)
        else:
            self.dialogue.add_exchange(turn.user_text, turn.heard_text, interrupted=turn.interrupted)
        self._turns_logged += 1
        record = {**turn.record(), "turn": self._turns_logged}
        self.turn_log.write(record)
        self.reporter.turn_done(record)
