"""What counts as a repeat: a reply, or a sentence of one, that says again what was said before.

A small model copies its own earlier replies as the history grows, and now
and then recites its system prompt. RepeatGuard (repeat_guard.py) judges a
reply sentence by sentence, as the chunker cuts it, so a repeat is caught
before it is spoken; the dialogue benchmark counts repeats with the same
definitions.

Words of the question being answered never count as repeated: asked "Tell me
one thing about owls." after "... about bees.", "One thing about owls is"
echoes the question, not the earlier reply. Nor do function words ("the",
"is", "it", "and"): every reply holds them, and over a long conversation a
short new answer ("Owls hunt at night and they can turn their heads.") found
most of them in some earlier reply, so new answers were refused as repeats.
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator

NEAR_DUPLICATE = 0.7  # share of a text's content words found in an earlier one
RECITED_WORDS = 6  # this many consecutive words of the system prompt
# Shorter pieces ("Sure, I can help.") are common to any conversation: judged only as part of more,
JUDGED_WORDS = 5
# except a reply's first words, when an earlier reply began with them: a stock opener in the making.
OPENING_WORDS = 4
# A piece is judged on this many content words at least: "The lighthouse keeper, one of the most" holds
# one ("one"), found in "That's a good one.", and the opening was taken for a repeat and asked for again.
JUDGED_CONTENT_WORDS = 2

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"')\]])\s+")
_FINISHED = re.compile(r"(?:[!?]|(?<!\.\.)\.)[\"')\]]*$")  # "The ocean..." trails off, to go on


def ends_a_sentence(text: str) -> bool:
    return bool(_FINISHED.search(text))


# English words that carry no content of their own: articles, pronouns, auxiliaries, prepositions,
# conjunctions and the commonest adverbs.
FUNCTION_WORDS = frozenset("""
a an the this that these those it its it's i i'm i'd i'll i've me my you you're you'll your yours he she
him her his they they're them their we we're us our who whom whose which what where when why how
is are was were be been being am do does did done have has had having can could will would shall
should may might must not no nor don't doesn't isn't aren't can't won't there there's here
and or but so if then than as because while though also too very just only even more most much many
some any all each every of in on at to for from with by about into onto over under out up down off
again once like well
""".split())


def words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def own_words(text: str, asked: str = "") -> list[str]:
    """The text's words, less those of the question it answers."""
    echoed = set(words(asked))
    return [w for w in words(text) if w not in echoed]


def content_words(text: str, asked: str = "") -> list[str]:
    """The text's own words that say something: neither the question's nor function words."""
    return [w for w in own_words(text, asked) if w not in FUNCTION_WORDS]


def shared_share(text: str, earlier: str, asked: str = "") -> float:
    """The share of the text's content words that the earlier text holds too."""
    return _found_share(content_words(text, asked), set(words(earlier)))


def _found_share(mine: list[str], theirs: set[str]) -> float:
    return sum(1 for w in mine if w in theirs) / len(mine) if mine else 0.0


def near_duplicate(text: str, earlier: str, asked: str = "") -> bool:
    return shared_share(text, earlier, asked) >= NEAR_DUPLICATE


def judged(text: str, asked: str = "") -> bool:
    """Long enough to be judged a repeat: shorter replies ("Sure, I can help.") are common to any talk,
    and one content word is found again in some earlier reply by chance."""
    return len(own_words(text, asked)) >= JUDGED_WORDS and len(content_words(text, asked)) >= JUDGED_CONTENT_WORDS


def repeats_earlier(text: str, earlier: Iterable[str], asked: str = "") -> bool:
    """The guard's test, and the benchmarks': long enough to judge, and mostly said before in one of `earlier`."""
    return Said(earlier).repeated_by(text, asked)


class Said:
    """Texts said before, each held as its set of words, to test many new texts against them quickly."""

    def __init__(self, texts: Iterable[str]):
        self._words = [set(words(text)) for text in texts]

    def repeated_by(self, text: str, asked: str = "") -> bool:
        if not judged(text, asked):
            return False
        mine = content_words(text, asked)
        return any(_found_share(mine, theirs) >= NEAR_DUPLICATE for theirs in self._words)


def cut_points(text: str, last_words: int) -> Iterator[str]:
    """The text as a listener would have heard it, cut after each of its last words."""
    said = words(text)
    for end in range(max(1, len(said) - last_words + 1), len(said) + 1):
        yield " ".join(said[:end])


def opening(text: str) -> list[str]:
    return words(text)[:OPENING_WORDS]


def recites(text: str, system_prompt: str, run: int = RECITED_WORDS) -> bool:
    said, prompt = words(text), " ".join(words(system_prompt))
    return any(" ".join(said[i:i + run]) in prompt for i in range(len(said) - run + 1))


# Said when every try repeated, in new words each time: the same line said twice is a repeat too, and
# sounds like a machine. No two share more than a fifth of their content words.
NOTHING_NEW = (
    "I'd only be repeating myself there. Could you ask me another way?",
    "I have already told you all I know about that. Maybe try a different angle?",
    "Nothing fresh comes to mind on that one. Shall we talk about something else?",
    "That is everything I can say on it for now. What else would you like to hear about?",
    "I am out of new thoughts on this topic. Ask me anything different and I will give it a go.",
    "My well has run dry on that subject. Pick another and let us keep chatting.",
)


def is_nothing_new(reply: str) -> bool:
    """One of the NOTHING_NEW lines, or the start of one that the user cut off (a few words: "I have" is not)."""
    reply = reply.strip()
    return reply in NOTHING_NEW or (len(words(reply)) >= OPENING_WORDS
                                    and any(line.startswith(reply) for line in NOTHING_NEW))


def split_sentences(text: str) -> list[str]:
    return [sentence for sentence in _SENTENCE_END.split(text) if sentence]
