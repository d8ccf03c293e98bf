import random
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


def test_a_first_sentence_with_no_comma_is_cut_where_a_phrase_begins():
    pieces = chunks("The coffee is a drink made from the roasted seeds of the coffee plant.", first_clause_words=2)
    assert pieces == ["The coffee is a drink made", "from the roasted seeds of the coffee plant."]
    assert chunks("One thing about the moon is bright.", first_clause_words=2) == ["One thing about the moon is bright."]


def test_an_opening_that_trails_off_is_cut_there():
    assert chunks("The ocean... it's a vast place.", first_clause_words=2) == ["The ocean...", "it's a vast place."]
    assert chunks("The moon… so bright.", first_clause_words=2) == ["The moon…", "so bright."]
    assert chunks("Well... yes.", first_clause_words=2) == ["Well... yes."]


def test_the_text_not_cut_yet_is_pending():
    chunker = Chunker(150, 3)
    assert chunker.feed("The bees are a remarkable and **mysterious**") == ["The bees are a remarkable"]
    assert chunker.pending == "and mysterious"
    assert chunker.feed(" creatures. They") == ["and mysterious creatures."] and chunker.pending == "They"


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


def stream(text: str, seed: int, max_chars: int = 150, first_clause_words: int = 3) -> tuple[list[str], int | None]:
    """Feed text in tokens of 1 to 4 characters; also say how much had been fed when the first piece came."""
    rng, chunker = random.Random(seed), Chunker(max_chars, first_clause_words)
    out, fed, first_at = [], 0, None
    while fed < len(text):
        size = rng.randint(1, 4)
        out += chunker.feed(text[fed:fed + size])
        fed += size
        if out and first_at is None:
            first_at = fed
    return out + chunker.flush(), first_at


def assert_streamed(text: str, expected: list[str], **options) -> None:
    for seed in range(10):
        pieces, first_at = stream(text, seed, **options)
        assert pieces == expected, seed
        assert first_at is not None and first_at < len(text), "the first piece waited for the whole reply"
        assert "".join(pieces).replace(" ", "") == re.sub(r"\s", "", text)  # nothing lost or reordered


@pytest.mark.parametrize("reply, expected", [
    ("今天北京天气很好，气温大约二十度。你可以去公园散步。要不要我推荐几个地方？",
     ["今天北京天气很好，", "气温大约二十度。", "你可以去公园散步。", "要不要我推荐几个地方？"]),
    ("はい、わかりました。明日の会議は午後三時からです。田中さんには「了解です」と伝えておきますね！",
     ["はい、わかりました。", "明日の会議は午後三時からです。", "田中さんには「了解です」と伝えておきますね！"]),
    ("오늘 서울은 조금 흐리지만, 오후에는 맑아질 거예요. 우산은 필요 없을 것 같아요. 다른 궁금한 점이 있으신가요?",
     ["오늘 서울은 조금 흐리지만,", "오후에는 맑아질 거예요.", "우산은 필요 없을 것 같아요.", "다른 궁금한 점이 있으신가요?"]),
    ("आज दिल्ली में मौसम अच्छा है, धूप निकली हुई है। शाम को हल्की बारिश हो सकती है।कृपया छाता साथ रखें।",
     ["आज दिल्ली में मौसम अच्छा है,", "धूप निकली हुई है।", "शाम को हल्की बारिश हो सकती है।", "कृपया छाता साथ रखें।"]),
    ("بالتأكيد يمكنني مساعدتك، الطقس في القاهرة مشمس اليوم. درجة الحرارة ٣٢٫٥ درجة مئوية. هل تريد معرفة توقعات الغد؟",
     ["بالتأكيد يمكنني مساعدتك،", "الطقس في القاهرة مشمس اليوم.", "درجة الحرارة ٣٢٫٥ درجة مئوية.",
      "هل تريد معرفة توقعات الغد؟"]),
], ids=["zh", "ja", "ko", "hi", "ar"])
def test_replies_in_other_scripts_stream_by_clause_and_sentence(reply, expected):
    # 'はい' (two letters, one word) is too short a first clause, like 'Sure,' in English.
    assert_streamed(reply, expected)


def test_mixed_english_and_chinese():
    text = "我最喜欢的编程语言是Python。It is easy to read. 你呢？！你喜欢用JavaScript吗？好的!我们开始吧。"
    assert_streamed(text, ["我最喜欢的编程语言是Python。", "It is easy to read.", "你呢？！", "你喜欢用JavaScript吗？",
                           "好的!", "我们开始吧。"])


def test_fullwidth_numbers_are_not_cut():
    text = "这台电脑的价格是１，０００元，非常划算。円周率はおよそ３．１４です。"
    assert_streamed(text, ["这台电脑的价格是１，０００元，", "非常划算。", "円周率はおよそ３．１４です。"])


def test_long_unpunctuated_chinese_is_split_at_the_bound():
    # A Chinese letter counts as three characters: 150 allow 50 of them, under XTTS's own 82.
    text = ("从前在一座很高很高的山上住着一位老和尚他每天早上都会给小和尚讲一个故事故事里说从前在一座很高很高的山上"
            "住着一位老和尚他每天晚上都会给小和尚讲同一个故事小和尚听了很多年也从来没有觉得厌烦因为每一次老和尚讲的"
            "时候声音都不太一样。")
    pieces = [text[:50], text[50:100], text[100:]]
    assert_streamed(text, pieces, first_clause_words=0)


def test_long_japanese_sentence_splits_at_its_comma():
    text = "東京から大阪までは新幹線で約二時間半かかりますが、飛行機なら一時間ほどで着きます。"
    assert_streamed(text, ["東京から大阪までは新幹線で約二時間半かかりますが、", "飛行機なら一時間ほどで着きます。"],
                    max_chars=90, first_clause_words=0)


def test_long_chinese_with_an_english_word_splits_between_words():
    # The bound (30 Chinese letters) falls inside 'JavaScript': the cut comes before it.
    text = "我们今天要学习的内容包括基础语法以及如何在浏览器里面使用JavaScript编写一个完整的网页应用程序"
    assert_streamed(text, ["我们今天要学习的内容包括基础语法以及如何在浏览器里面使用", "JavaScript编写一个完整的网页应用程序"],
                    max_chars=90, first_clause_words=0)
