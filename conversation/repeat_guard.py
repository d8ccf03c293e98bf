"""RepeatGuard: a reply judged sentence by sentence as it is cut, and generated anew when it opens with a repeat.

What counts as a repeat is in repeats.py.
"""
from __future__ import annotations

import logging
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import AsyncIterator, Callable, Iterable

from llm.base import CutShort, Generation, Message

from .chunker import Chunker
from .repeats import (NOTHING_NEW, OPENING_WORDS, Said, cut_points, ends_a_sentence, judged, opening, own_words,
                      recites, repeats_earlier, split_sentences, words)

log = logging.getLogger(__name__)

RECITAL = "recites the system prompt"


def less_repetitive(generation: Generation, refused_openings: Iterable[str]) -> Generation:
    """A next try's settings: hotter sampling, stronger penalties, and no refused opening again.

    The prompt stays as it was: read for the first try, a second try's first token
    comes at once. Against a second try nudged "Answer this question directly, in new
    words." just before the user's words (dialogue benchmark, 60 typed turns, seeds
    2-4): 40 replies asked for twice, not 52; 5 unfinished, not 6; 5 sharing an
    opening, not 15; the first spoken piece p90 342-384 ms, not 364-520.
    """
    return replace(generation, temperature=max(generation.temperature, 0.9),
                   frequency_penalty=max(generation.frequency_penalty, 1.0),
                   presence_penalty=max(generation.presence_penalty, 0.6),
                   avoid_openings=tuple(dict.fromkeys([*generation.avoid_openings, *refused_openings])))


def without_history(messages: list[Message]) -> list[Message]:
    """The system prompt, the instructions just before the user's words, and those words."""
    start = len(messages) - 1
    while start > 1 and messages[start - 1]["role"] == "system":
        start -= 1
    return [message for message in messages[:1] if message["role"] == "system"] + messages[start:]


@dataclass(frozen=True)
class Unit:
    """Pieces judged together, with the words generated after them that are judged too but not yet spoken."""

    pieces: tuple[str, ...]
    ahead: str = ""


@dataclass(frozen=True)
class Draft:
    """A reply's first piece, cut while its opening still waits to be judged.

    It may be synthesized ahead, and is heard only if it then comes as a sentence.
    """

    text: str


class RepeatGuard:
    """Judges one reply, sentence by sentence as it is cut, against the replies before it."""

    def __init__(self, earlier_replies: list[str], system_prompt: str, asked: str = "",
                 nothing_new: str = NOTHING_NEW[0]):
        self.earlier_replies = [reply for reply in earlier_replies if words(reply)]
        self.said_replies = Said(self.earlier_replies)
        self.said_sentences = Said(sentence for reply in self.earlier_replies for sentence in split_sentences(reply))
        self.system_prompt = system_prompt
        self.asked = asked  # the user's words this reply answers
        self.nothing_new = nothing_new  # said when every try repeats
        self.spoken: list[str] = []
        self.dropped: list[str] = []
        self.attempts = 0  # LLM streams this reply took
        self.last_try = False  # judged whole, not at every word it could be cut at: it beats saying nothing new

    @classmethod
    def for_prompt(cls, messages: list[Message], earlier_replies: Iterable[str] | None = None,
                   nothing_new: str = NOTHING_NEW[0]) -> RepeatGuard:
        """A guard for the reply to this prompt: its system prompt first, the user's words last.

        The reply is held against `earlier_replies`, or else those in the prompt.
        """
        system_prompt = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
        asked = messages[-1]["content"] if messages and messages[-1]["role"] == "user" else ""
        if earlier_replies is None:
            earlier_replies = [m["content"] for m in messages if m["role"] == "assistant"]
        return cls(list(earlier_replies), system_prompt, asked, nothing_new)

    def why_not(self, piece: str) -> str | None:
        """Why this piece should not be spoken next, or None when it says something new."""
        so_far = " ".join([*self.spoken, piece])
        if recites(so_far, self.system_prompt):  # what was spoken recited nothing: the run reaches into this piece
            return RECITAL
        if not self.spoken and len(words(piece)) < OPENING_WORDS and not ends_a_sentence(piece):
            return "is the whole reply, and unfinished"  # "The answer is:" and nothing after
        if not self.spoken and self._stock_opener(piece):
            return "opens the way an earlier reply did"
        finished = split_sentences(" ".join(self.spoken))
        if finished and not ends_a_sentence(finished[-1]):
            finished.pop()  # the sentence this piece goes on with is judged whole, below
        for sentence in split_sentences(so_far)[len(finished):]:
            if self.said_sentences.repeated_by(sentence, self.asked) or repeats_earlier(sentence, finished, self.asked):
                return "repeats an earlier sentence"
        # Cut off by the user's next words, the reply is heard only so far: judged at every word it
        # could end on, "People love castles, but they're actually a type" is heard as the repeat of
        # "People love dolphins, but they're actually a type of marine mammal." that it is.
        heard = [so_far] if self.last_try else cut_points(so_far, len(words(piece)))
        if any(self.said_replies.repeated_by(text, self.asked) for text in heard):
            return "repeats an earlier reply"
        return None

    def _stock_opener(self, piece: str) -> bool:
        """An earlier reply opened with these words, not all of them the question's (a first try only)."""
        first = opening(piece)
        if self.attempts > 1 or len(first) < OPENING_WORDS or not own_words(" ".join(first), self.asked):
            return False
        return any(first == opening(reply) for reply in self.earlier_replies)

    def admit(self, piece: str, ahead: str = "") -> bool:
        """Judge the next piece, with the words generated after it if given; only an admitted one is spoken."""
        judged_text = f"{piece} {ahead}" if ahead else piece
        reason = self.why_not(judged_text)
        if reason:
            log.info("not said, it %s: %r", reason, judged_text)
        (self.dropped if reason else self.spoken).append(piece)
        return reason is None

    async def fresh_sentences(self, stream: Callable[[list[Message], Generation], AsyncIterator[str]],
                              messages: list[Message], generation: Generation,
                              new_chunker: Callable[[], Chunker], drafts: bool = False
                              ) -> AsyncIterator[str | Draft]:
        """The reply's sentences as they are cut, up to the first repeat; with `drafts`, its Draft first.

        A reply that opens with a repeat is generated once more, less repetitively,
        and if that repeats too, once more from the question alone: the model
        cannot copy what it does not see; so is one whose first sentence turns
        into a repeat after its opening was spoken. A repeat later on ends the
        reply: what follows is mostly more of the same. A reply with nothing new
        says so.

        In a typed replay of a 200-question spoken conversation, the third try from
        the question alone at the first settings said nothing new 7 times; at a
        second try's settings (then nudged in words) 4 times, and judged whole once.
        """
        prompts = [messages, messages, without_history(messages)]
        settings, openings = generation, []  # each try's first piece: no later try begins with it
        for prompt in prompts:
            if self.attempts:
                settings = less_repetitive(generation, openings)
            self.attempts += 1
            self.last_try = self.attempts == len(prompts)
            # The last try is judged whole, so its opening is not judged on the words ahead of its pieces.
            cut = _cut(stream(prompt, settings), new_chunker(), self.asked, look_ahead=not self.last_try)
            async with aclosing(cut) as units:
                async for unit in units:
                    if isinstance(unit, Draft):
                        if drafts:
                            yield unit
                        continue
                    if len(openings) < self.attempts:
                        openings.append(unit.pieces[0])
                    if not self.admit(" ".join(unit.pieces), unit.ahead):
                        break
                    for piece in unit.pieces:  # as the chunker cut them: a short first clause is voiced sooner
                        yield piece
            if not self.dropped or any(ends_a_sentence(piece) for piece in self.spoken):
                break
            # Nothing said yet, or only an opening admitted on its first words, its sentence then a
            # repeat: a reply that stopped at "One thing about trains is" sounded cut off. Start anew.
        if self.dropped and not self.spoken:
            yield self.nothing_new


async def _cut(pieces: AsyncIterator[str], chunker: Chunker, asked: str, look_ahead: bool = True
               ) -> AsyncIterator[Unit | Draft]:
    """The reply's speakable pieces, each a unit to judge; an unfinished opening waits for what follows.

    Spoken alone, "The perfect joke:" or, asked why people like bees, "People
    like bees for many reasons," could not be judged, nor taken back when what
    follows is a repeat, and the reply would end on it: the opening's pieces
    are judged with the words generated after them, as soon as those say enough
    (the rest of a long first sentence, cut whole, was heard up to 490 ms
    later), and its first piece is a Draft meanwhile. "Sure." may go at once.
    """
    opening: list[str] | None = []

    def ready(sentences: list[str]) -> list[Unit | Draft]:
        nonlocal opening
        if opening is None:
            return [Unit((sentence,)) for sentence in sentences]
        drafted = bool(opening)
        opening += sentences
        whole = " ".join(opening)
        if whole and (judged(whole, asked) or ends_a_sentence(whole)):
            unit, opening = Unit(tuple(opening)), None
            return [unit]
        ahead = chunker.pending if whole and look_ahead else ""
        if ahead and judged(f"{whole} {ahead}", asked):
            unit, opening = Unit(tuple(opening), ahead), None
            return [unit]
        return [] if drafted or not opening else [Draft(opening[0])]

    cut_short = False
    async with aclosing(pieces):
        async for piece in pieces:
            cut_short = isinstance(piece, CutShort)
            for unit in ready(chunker.feed(piece)):
                yield unit
    tail = chunker.flush()
    if cut_short and opening is None and tail and not ends_a_sentence(tail[-1]):
        # "... such as a picnic blanket or": the token limit stopped it mid-sentence; end on the last whole one.
        log.info("not said, the token limit cut it off: %r", tail.pop())
    for unit in ready(tail):
        yield unit
    if opening:  # the whole reply is a short unfinished phrase
        yield Unit(tuple(opening))
