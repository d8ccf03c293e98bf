"""Does the user's text sound finished? The words' half of ending a turn early.

The agent ends a turn early only if this says yes and Smart Turn says the
voice sounds finished too; either cue alone misfires: Whisper puts a full
stop after "And so my fellow Americans", and a falling voice can end any
phrase. It also recognises our own words coming back through the mic.
"""
from __future__ import annotations

from .repeats import content_words, shared_share, words

# A sentence ending on one of these words is still going ("... and", "... my").
_DANGLING = {
    "and", "but", "or", "so", "because", "if", "then", "the", "a", "an", "to", "of", "in", "on", "at", "for",
    "with", "my", "your", "our", "their", "his", "her", "its", "is", "are", "was", "were", "that", "which",
    "who", "what", "when", "where", "um", "uh", "like", "than", "as", "from", "by", "about", "into", "i",
}
# "And so ...", "But ...": a short phrase opened by a connective announces more to come.
_OPENERS = ("and", "and so", "so", "but", "or", "because", "well", "now", "then", "if")
SHORT_OPENED_PHRASE = 6  # words


def sounds_complete(text: str) -> bool:
    text = text.strip()
    if not text or text.endswith(("...", "…", ",", ";", ":", "-", "—")):
        return False
    if not text.endswith((".", "!", "?")):
        return False  # Whisper leaves a cut-off phrase unpunctuated
    said = words(text)
    if not said or said[-1] in _DANGLING:
        return False
    opened = any(" ".join(said[:len(o.split())]) == o for o in _OPENERS)
    return not (opened and len(said) <= SHORT_OPENED_PHRASE and not text.endswith("?"))


# Measured on every pause in the shared clips and 30 spoken questions (conversation/benchmarks/turn_cues.py):
# a speaker who went on after a pause this long, or who began mid-sentence, is not done after a short one.
PAUSE_MARGIN_S = 0.2
MID_SENTENCE_FACTOR = 2.5


def required_silence(text: str, min_silence: float, longest_pause: float, statement_silence: float = 0.0,
                     is_command: bool = False) -> float:
    """Seconds of silence after which words and voice that sound finished end the turn.

    Longer than the longest pause the speaker already went on after ("as you
    know, and as I have given you proof." went on after 460 ms). A statement,
    not plainly finished, needs `statement_silence`: read aloud, "Eight." went
    on after 440 ms, and "Permission is hereby granted." after about as long;
    so did those Whisper heard begin mid-sentence, in lower case (460 ms at
    most in the shared clips). A question heard so needs longer still: it may
    be one a story tells ("and says, how do I get to Dublin?" went on after
    700 ms). A request or command opens with its verb, so its lower case is
    Whisper's habit after other sound (a cut-in: "stop and tell me about a
    cat instead."), not a sentence begun before the turn.
    """
    needed = max(min_silence, longest_pause + PAUSE_MARGIN_S if longest_pause else 0.0)
    if not plainly_finished(text, is_command):
        return max(needed, statement_silence)
    if text.strip()[:1].islower() and not (is_command or is_request(text)):
        needed = max(needed, MID_SENTENCE_FACTOR * min_silence)  # a question inside a story
    return needed


# Verbs that open a request to the agent: "Tell me one thing about chess." asks as plainly as a question.
_REQUEST_VERBS = {
    "tell", "give", "show", "explain", "describe", "name", "list", "recommend", "suggest", "teach", "sing",
    "stop", "help", "please", "remind", "find", "pick", "play", "write", "translate", "define", "compare",
    "summarize", "summarise", "spell", "continue", "repeat", "recite", "guess", "imagine", "invent", "count",
}


def is_request(text: str) -> bool:
    """Words addressed to the agent as a request: opened by an imperative verb ("Tell me ...", "Stop and ...")."""
    first = words(text)[:1]
    return bool(first) and first[0] in _REQUEST_VERBS


def plainly_finished(text: str, is_command: bool) -> bool:
    """Words that end a turn whatever the voice says: a question, a request or a command that sounds complete.

    Smart Turn, trained on conversational speech, scored 0.09 and 0.03 on "Why do
    people like cheese?" and "... bread?" said by a TTS voice, and 0.08 and 0.06
    on "Tell me one thing about chess." and "Stop and tell me about a cat
    instead.": each would have waited the whole hang-over.
    """
    return sounds_complete(text) and (is_command or text.rstrip().endswith("?") or is_request(text))


def is_own_echo(heard: str, agent_said: str, share: float = 0.7) -> bool:
    """True when what the mic heard is mostly words the agent itself just said.

    Its content words must be the agent's too: a reply that opened by echoing
    the question ("What is special about lighthouses is...") made the user's
    next "What is special about bread?" 80% the agent's words, and one after
    another such question was dropped as our own voice.
    """
    import difflib

    heard_words = words(heard)
    said_words = words(agent_said)
    if len(heard_words) < 2 or not said_words:
        return False
    matcher = difflib.SequenceMatcher(a=heard_words, b=said_words, autojunk=False)
    matched = sum(block.size for block in matcher.get_matching_blocks())
    if matched / len(heard_words) < share:
        return False
    return not content_words(heard) or shared_share(heard, agent_said) >= share
