"""The long-conversation benchmark: its bookkeeping on made-up turns, and a short real run."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conversation.benchmarks.long_conversation import (TOPICS, Utterance, fifths, heard, main, questions,
                                                       voice_to_voice)

RATE = 16000


def said(text: str, start: float, end: float) -> Utterance:
    return Utterance(text, np.zeros(int((end - start) * RATE), np.float32), start, end)


def turn(user_text: str, start: float, end: float, **fields) -> dict:
    return {"user_text": user_text, "speech_start": start, "speech_end": end, **fields}


def test_two_hundred_questions_all_different():
    asked = questions(200)
    assert len(set(asked)) == 200
    topics = [next(topic for topic in TOPICS if f" {topic} " in f" {q[:-1]} ") for q in asked]
    assert all(a != b for a, b in zip(topics, topics[1:])), "neighbours share a topic"


def test_an_utterance_is_heard_in_the_turns_over_it_even_when_split():
    utterance = said("Tell me one thing about the moon.", 10.0, 12.0)
    split = [turn("Tell me one", 10.0, 10.8), turn("thing about the moon.", 11.0, 12.0), turn("Other.", 20, 21)]
    assert heard(utterance, split) == 1.0
    assert heard(utterance, [turn("Tell me one thing about the moon.", 30.0, 32.0)]) == 0.0  # another time: lost
    assert heard(utterance, [turn("Tell me about bees.", 10.0, 12.0)]) == pytest.approx(3 / 7)


def test_voice_to_voice_is_read_from_the_output_and_must_come_before_the_next_utterance():
    output = np.zeros(30 * RATE, np.float32)
    output[int(3.4 * RATE):int(5 * RATE)] = 0.2  # the first reply, 400 ms after the user stopped
    output[int(19 * RATE):int(20 * RATE)] = 0.2  # a reply to the second, only after the third began
    output[int(21.5 * RATE):int(23 * RATE)] = 0.2  # still talking when the fourth ends at 22 s ...
    output[int(23.3 * RATE):int(24 * RATE)] = 0.2  # ... and its answer 1.3 s after
    utterances = [said("a", 1.0, 3.0), said("b", 10.0, 12.0), said("c", 15.0, 17.0), said("d", 20.0, 22.0)]
    assert voice_to_voice(utterances, output, RATE) == [400, None, 2000, 1300]


def test_fifths_take_the_ends():
    assert fifths(list(range(10)), True) == [0, 1] and fifths(list(range(10)), False) == [8, 9]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_short_spoken_conversation_loses_nothing(tmp_path):
    assert main(["--utterances", "4", "--gap-s", "7", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "long_conversation.json").read_text())
    assert result["utterances"] == 4 and result["lost"] == []
    assert result["v2v_ms"]["p50"] is not None and result["rss_mb"]["peak"] > 100
    assert (tmp_path / "rss.png").stat().st_size > 0 and (tmp_path / "latency.png").stat().st_size > 0
