"""Cutting streamed tokens into speakable pieces as soon as each one ends."""
from __future__ import annotations

import re

from .speakable import speakable

ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "eg", "ie", "no", "fig",
    "approx", "inc", "ltd", "co", "corp", "dept", "est", "mt", "ft", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "nov", "dec", "a.m", "p.m", "u.s", "u.k", "u.n", "e.u", "ph.d", "cf", "al",
}
_CLOSERS = "\"')]}*_»”’」』）】》〉〕〗〙〛］｝＂＇"
# Chinese and Japanese (fullwidth), Hindi (danda) and Arabic/Urdu end sentences with their own marks,
# often with no space after them: these end a sentence whatever follows but a digit (３．５).
_UNSPACED_END = "。．！？।॥؟۔"
_SENTENCE_END = ".!?" + _UNSPACED_END
# Their clause marks (、，；： and Arabic ، ؛) need no space either; between digits (１，０００) they group a number.
_UNSPACED_CLAUSE = "、，；：،؛"
_CLAUSE_MARKS = ",;:—–…." + _UNSPACED_CLAUSE  # "." only as an ellipsis' last dot ("The ocean... it's")
_CLAUSE_BREAK = re.compile(
    r"(?:[,;:—–…]|(?<=\.\.)\.)(?=\s)|\s-\s|\s(?:and|but|or|so|because|which|while)\s"
    rf"|(?<!\d)[{_UNSPACED_CLAUSE}]|[{_UNSPACED_CLAUSE}](?=\D)")
# Words that open a new phrase: a fair place to cut when no comma comes soon (a first sentence with no
# comma, "The coffee is a drink made from the roasted seeds of the coffee plant.", took 170 ms to voice whole),
_PHRASE_BREAK = re.compile(r"\s(?=(?:and|but|or|so|because|which|while|that|with|for|to|when|if|where|who"
                           r"|from|in|on|at|about|into|through|during|after|before|since|until)\s)")
# after this many words at least: with no comma to end it, "People like bees" was voiced as a sentence.
PHRASE_WORDS = 4
FENCE = "```"

# Chinese and Japanese letters (Han, kana) have no spaces between words; Korean (Hangul) does.
_UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_UNSPACED_LETTER = re.compile(f"[{_UNSPACED}]")
_CJK_TEXT = re.compile(f"[{_UNSPACED}\u3000-\u303f\uff00-\uffef]")  # their letters and punctuation
# One syllable each, as long to say as about three Latin letters: XTTS's own limits agree
# (250 characters for English, 82 for Chinese, 71 for Japanese, 95 for Korean).
_WIDE_LETTER = re.compile(f"[{_UNSPACED}\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
_WIDE_LETTER_CHARS = 3


class Chunker:
    """feed() tokens, get back the pieces that are complete; flush() the rest.

    The first piece of a reply may be a short clause, so speech starts early;
    later pieces are whole sentences, split near `max_chars` when too long.
    A Chinese, Japanese or Korean letter counts as 3 characters there (one
    syllable), and two Chinese or Japanese letters as one of `first_clause_words`.
    """

    def __init__(self, max_chars: int = 150, first_clause_words: int = 0):
        self.max_chars = max_chars
        self.first_clause_words = first_clause_words
        self._raw = ""  # text not yet emitted, code removed
        self._fence_tail = ""  # backticks held until we know if they open a fence
        self._in_fence = False
        self._emitted = 0

    @property
    def pending(self) -> str:
        """The text fed but not cut into a piece yet, as it would be spoken."""
        return speakable(self._raw)

    def feed(self, token: str) -> list[str]:
        self._raw += self._strip_code(token)
        return self._cut(final=False)

    def flush(self) -> list[str]:
        self._raw += "" if self._in_fence else self._fence_tail
        self._fence_tail = ""
        return self._cut(final=True)

    def _strip_code(self, token: str) -> str:
        """Drop everything between ``` fences, even when a fence is split across tokens."""
        text, kept = self._fence_tail + token, []
        self._fence_tail = ""
        while text:
            at = text.find(FENCE)
            if at < 0:
                # Trailing backticks might begin a fence: hold them back.
                tail = len(text) - len(text.rstrip("`"))
                body, self._fence_tail = (text[:-tail], text[-tail:]) if tail else (text, "")
                if not self._in_fence:
                    kept.append(body)
                break
            if not self._in_fence:
                kept.append(text[:at] + "\n")  # a code block ends the text before it
            self._in_fence = not self._in_fence
            text = text[at + len(FENCE):]
        return "".join(kept)

    def _cut(self, final: bool) -> list[str]:
        pieces = []
        while True:
            end = self._boundary()
            if end is None:
                break
            pieces.append(self._raw[:end])
            self._raw = self._raw[end:]
        if final and self._raw.strip():
            pieces.append(self._raw)
            self._raw = ""
        spoken = [s for s in (speakable(p) for p in pieces) if s]
        self._emitted += len(spoken)
        return spoken

    def _boundary(self) -> int | None:
        text, size = self._raw, 0
        for i, char in enumerate(text):
            if char == "\n" and text[:i].strip():
                return i + 1
            if char in _SENTENCE_END:
                end = _end_of_sentence(text, i)
                if end is not None:
                    return end
            if size >= self.max_chars:
                return _clause_split(text, i)
            size += _chars(char)
        if self._emitted == 0 and self.first_clause_words:
            return self._first_clause(text)
        return None

    def _first_clause(self, text: str) -> int | None:
        """A reply's opening phrase: up to a comma, or before a linking word a bit later."""
        for match in _CLAUSE_BREAK.finditer(text):
            if match.group()[0] in _CLAUSE_MARKS and _words(text[:match.start()]) >= self.first_clause_words:
                return match.start() + 1
        for match in _PHRASE_BREAK.finditer(text):
            if _words(text[:match.start()]) >= max(self.first_clause_words + 1, PHRASE_WORDS):
                return match.start() + 1
        return None


def _chars(char: str) -> int:
    """How much of `max_chars` a character uses."""
    return _WIDE_LETTER_CHARS if _WIDE_LETTER.match(char) else 1


def _words(text: str) -> float:
    """Words in `text`; Chinese and Japanese have no spaces, and two of their letters make about one word."""
    return len(_CJK_TEXT.sub(" ", text).split()) + len(_UNSPACED_LETTER.findall(text)) / 2


def _end_of_sentence(text: str, i: int) -> int | None:
    """Index just past the sentence that ends at text[i], or None if it does not end there."""
    char = text[i]
    j = i + 1
    while j < len(text) and (text[j] in _CLOSERS or char in _UNSPACED_END and text[j] in _UNSPACED_END):
        j += 1  # 」 and ？！ stay with the sentence
    if j >= len(text):
        return None  # wait: the next token decides (an abbreviation, a decimal, an ellipsis)
    if char in _UNSPACED_END:
        return None if text[i - 1:i].isdigit() and text[j].isdigit() else j  # ３．５ is a number
    if not text[j].isspace() and not _UNSPACED_LETTER.match(text[j]):
        return None  # 3.14, example.com, e.g. inside a word; "OK.好的" does end
    if char == ".":
        if i > 0 and text[i - 1] == ".":
            return None  # an ellipsis trails off, it doesn't end a sentence
        line = text[:i].rsplit("\n", 1)[-1]
        word = line.split()[-1].lstrip("(\"'*_").lower() if line.split() else ""
        if word.isdigit() and len(line.split()) == 1:
            return None  # "1. " opens a list item
        if word in ABBREVIATIONS or re.fullmatch(r"(?:[a-z]\.)*[a-z]", word):
            return None  # Mr. Smith, U.S. law, J. R. R. Tolkien
    return j


def _clause_split(text: str, limit: int) -> int:
    """Split a long sentence at the last clause break before `limit`, else between words."""
    head = text[:limit]
    breaks = [m.start() + 1 for m in _CLAUSE_BREAK.finditer(head) if m.start() > limit // 3]
    if breaks:
        return breaks[-1]
    space = head.rfind(" ")
    return max(space + 1 if space > 0 else 0, _last_letter_break(text, limit)) or limit


def _last_letter_break(text: str, limit: int) -> int:
    """The last place before `limit` between two letters, one of them Chinese or Japanese; 0 if none.

    Those scripts have no spaces, so a long run without punctuation is cut there.
    """
    for end in range(limit, 0, -1):
        pair = text[end - 1:end + 1]
        if pair.isalnum() and _UNSPACED_LETTER.search(pair):
            return end
    return 0
