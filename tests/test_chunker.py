import re

import pytest

from conversation.chunker import Chunker
from conversation.speakable import speakable


def chunks(text: str, max_chars: int = 150, first_clause_words: int = 0) -> list[str]:
    """Feed text token by token, the way an LLM streams it."""
    chunker, out = Chunker(max_chars, first_clause_words), []
    for token in re.findall(r"\S+|\s+", text):
        out += chunker.feed(token)
    return out + chunker.flush()


def test_sentences_are_cut_as_soon_as_they_end():
    chunker = Chunker()
    assert chunker.feed("Hello there!") == []  # the next token may still be part of it
    assert chunker.feed(" How") == ["Hello there!"]
    assert chunker.feed(" are you?") == []
    assert chunker.flush() == ["How are you?"]


@pytest.mark.parametrize("text", [
    "Mr. Smith met Dr. Jones in the U.S. last year.",
    "Pi is about 3.14 and e is 2.718 or so.",
    "That costs 1,000.50 dollars today.",
    "Well... I am not sure about that.",
    "See example.com/docs/page.html for more.",
    "Bring fruit, e.g. apples, i.e. something sweet.",
])
def test_no_cut_inside_abbreviations_numbers_ellipses_urls(text):
    assert chunks(text) == [text]


def test_numbers_at_sentence_end_still_cut():
    assert chunks("It happened in 1813. Then it ended.") == ["It happened in 1813.", "Then it ended."]


def test_long_sentence_splits_at_a_clause_near_the_limit():
    text = ("When the rain finally stopped after many long days, the villagers came out of their homes, "
            "and they danced in the square until the sun went down behind the distant hills.")
    pieces = chunks(text, max_chars=100)
    assert len(pieces) == 2
    assert all(len(p) <= 100 for p in pieces)
    assert pieces[0].endswith(",")
    assert " ".join(pieces) == text


def test_first_clause_is_sent_early():
    pieces = chunks("Sure thing, I can help you with that right away. Just ask.", first_clause_words=2)
    assert pieces[0] == "Sure thing,"
    assert pieces[1:] == ["I can help you with that right away.", "Just ask."]


def test_markdown_emoji_and_code_are_not_spoken():
    text = "## Steps\n1. Open **the** file 😀\n- Run `make`\n```python\nprint('hi')\n```\nDone! 🎉"
    assert chunks(text) == ["Steps", "Open the file", "Run make", "Done!"]


def test_code_fence_split_across_tokens():
    chunker = Chunker()
    out = []
    for token in ["Look:", " `", "``", "py\nx = 1\n`", "``", " Nice.", " Bye."]:
        out += chunker.feed(token)
    out += chunker.flush()
    assert out == ["Look:", "Nice.", "Bye."]


def test_speakable_drops_symbol_only_text():
    assert speakable("🎉🎉 ***") == ""
    assert speakable("[the docs](http://x.y) say so") == "the docs say so"


@pytest.mark.parametrize("reply, first", [
    ("你好。我是你的助手。有什么可以帮你？", "你好。"),  # Chinese: no space after a full stop
    ("こんにちは！今日はいい天気ですね。", "こんにちは！"),  # Japanese
    ("「はい。」と言った。それから帰った。", "「はい。」"),  # a closing quote stays with its sentence
    ("नमस्ते। मैं आपकी मदद कर सकता हूँ।", "नमस्ते।"),  # Hindi's danda
    ("مرحبا؟ كيف يمكنني مساعدتك.", "مرحبا؟"),  # Arabic question mark
])
def test_a_reply_in_any_xtts_script_is_cut_at_its_first_sentence_end(reply, first):
    chunker = Chunker()
    emitted_at = None
    for index, char in enumerate(reply):  # one character per token: the worst case for streaming
        if chunker.feed(char) and emitted_at is None:
            emitted_at = index
            break
    assert emitted_at is not None and emitted_at < len(reply) - 1, "the first sentence waited for the whole reply"
    assert chunks(reply)[0] == first
