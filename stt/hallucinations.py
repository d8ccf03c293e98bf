"""Whisper's well-known inventions on silence and noise."""
from __future__ import annotations

import re

# Phrases Whisper produces from non-speech, learnt from subtitled video.
KNOWN_PHRASES = {
    "you", "thank you", "thank you.", "thanks for watching", "thanks for watching!",
    "thank you for watching", "thank you for watching.", "bye", "bye.", "bye-bye",
    "please subscribe", "subscribe", "so", "okay", "the end", "i'm sorry",
    "thank you so much for watching", "see you next time", "hmm", "uh", "um",
}
_BRACKETED = re.compile(r"^[\s\[\(\*♪♫].*[\]\)\*♪♫]\s*$")
_SUBTITLE_CREDIT = re.compile(r"(subtitles|captions?|transcri\w+) (by|from)|amara\.org", re.IGNORECASE)


def normalize(text: str) -> str:
    return re.sub(r"[^\w' ]+", "", text.lower()).strip()


def is_hallucination(text: str, no_speech_prob: float, avg_logprob: float) -> bool:
    """True when `text` is most likely made up from non-speech."""
    stripped = text.strip()
    if not normalize(stripped):
        return True  # punctuation or symbols only
    if _BRACKETED.match(stripped) or _SUBTITLE_CREDIT.search(stripped):
        return True  # [Music], (applause), ♪ ... ♪, subtitle credits
    if normalize(stripped) in {normalize(p) for p in KNOWN_PHRASES}:
        # These are also real replies; drop them only when Whisper doubts the audio.
        return no_speech_prob > 0.15 or avg_logprob < -0.6
    return False


_REPEATS = re.compile(r"\b((?:[\w']+[\s,.]+){1,8}?)\1{2,}", re.IGNORECASE)
# Words: a phrase this long said twice in a row is Whisper starting over ("So when I think about normative
# questions, when I think about normative questions," from one saying), or a speaker's emphasis, which
# said once means the same. Shorter ones are speech ("very very good", "Stop it. Stop it.").
DOUBLED_PHRASE_WORDS = 5


def collapse_repeats(text: str) -> str:
    """Cut Whisper's repetition loops: a phrase said three or more times in a row is said once, and so
    is a phrase said twice at the end and cut off as it starts a third time, or a long one said twice."""
    return _collapse_doubled(_collapse_cut_loop(_REPEATS.sub(r"\1", text + " ").strip()))


def _collapse_doubled(text: str) -> str:
    words = text.split()
    keys = [normalize(word) for word in words]
    for size in range(len(words) // 2, DOUBLED_PHRASE_WORDS - 1, -1):
        for start in range(len(words) - 2 * size + 1):
            if keys[start:start + size] == keys[start + size:start + 2 * size]:
                return _collapse_doubled(" ".join(words[:start + size] + words[start + 2 * size:]))
    return text


def _collapse_cut_loop(text: str) -> str:
    """"Use the voice. Use the voice. Use the": the loop ran out of audio mid-phrase."""
    words = text.split()
    keys = [normalize(word) for word in words]
    for size in range(2, len(words) // 2 + 1):
        for cut in range(size - 1, 0, -1):  # the longest cut first: the loop's own start, not a rotation
            start = len(words) - 2 * size - cut
            if start < 0:
                continue
            phrase = keys[start:start + size]
            if keys[start + size:start + 2 * size] == phrase and keys[start + 2 * size:] == phrase[:cut]:
                return " ".join(words[:start + size])
    return text
