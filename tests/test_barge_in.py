"""Barge-in on real clips: the user talks over the agent, with and without echo."""
from __future__ import annotations

import pytest

from audio_io.files import read_audio
from conftest import replay
from conversation.benchmarks.scenarios import KNOWN_ONSETS, CutIn, build, cough, silent_after

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

QUESTION = "lhotse_common_voice_en_651325.mp3"  # "Every purchase is a vote."
INTERRUPTION = "lhotse_ES2011a.Headset-0-40s-46s.wav"  # "I'm Abigail Claflin. You can call me Abbie."
LONG_REPLIES = {"default_persona": "storyteller", "personas.storyteller.llm.max_tokens": 120}
LEAD_S = 1.0  # the session's echo probe plays first, as when the agent has just started


def interrupted_conversation(tmp_path, speech_dir, gap_s: float, echo=None):
    scenario = build(tmp_path / "in.wav", [(speech_dir / QUESTION, LEAD_S),
                                           (speech_dir / INTERRUPTION, LEAD_S + 2.4 + gap_s)])
    result = replay(scenario["path"], tmp_path, simulate_echo=echo, **LONG_REPLIES)
    # The AMI clip starts with 1.4 s of room noise: the user's onset is where its speech starts.
    return scenario, result


def check_interruption(onset: float, result):
    first, second = result.turns[0], result.turns[-1]
    assert first["interrupted"], result.turns
    late = first["barge_in_at"] - onset
    assert -0.25 <= late <= 0.25, f"barge-in {late:+.2f}s from the user's onset"
    stop = silent_after(result.output, result.out_rate, onset)
    assert stop is not None and stop <= 0.25, f"still talking {stop}s after the user started"
    # History holds only what was heard, and the next reply answers the new question.
    assert first["heard_text"] and len(first["heard_text"]) < len(first["agent_text"])
    heard_user = second["user_text"].lower()
    assert any(name in heard_user for name in ("abigail", "abby", "abbie", "call me")), result.turns
    assert second["agent_text"] and not second["interrupted"], result.turns
    return stop


def test_user_interrupts_the_agent(tmp_path, speech_dir):
    scenario, result = interrupted_conversation(tmp_path, speech_dir, gap_s=1.5)
    check_interruption(scenario["onsets"][1], result)


def test_interruption_with_open_speaker_echo(tmp_path, speech_dir):
    scenario, result = interrupted_conversation(tmp_path, speech_dir, gap_s=3.0, echo=(80.0, -10.0))
    check_interruption(scenario["onsets"][1], result)


def test_on_an_open_speaker_the_first_word_of_the_first_reply_can_be_cut(tmp_path, speech_dir):
    """No greeting, 0.3 s into the session's first reply: the probe has taught the canceller the room."""
    scenario = build(tmp_path / "in.wav", [(speech_dir / QUESTION, LEAD_S)], tail_s=1.0)
    user, _ = read_audio(speech_dir / INTERRUPTION, 16000)
    cut_in = CutIn(user, KNOWN_ONSETS[INTERRUPTION], 0.3, 16000, listen_after_s=scenario["ends"][0])
    result = replay(scenario["path"], tmp_path, simulate_echo=(80.0, -10.0), room_voice=cut_in, **LONG_REPLIES)
    assert cut_in.onset is not None, "the agent never answered the question"
    check_interruption(cut_in.onset, result)


def test_a_cough_pauses_and_the_reply_completes(tmp_path, speech_dir):
    scenario = build(tmp_path / "in.wav", [(speech_dir / QUESTION, 0.0), (cough(0.15), 5.5)], tail_s=1.0)
    result = replay(scenario["path"], tmp_path, **LONG_REPLIES)
    assert len(result.turns) == 1
    turn = result.turns[0]
    assert not turn["interrupted"]
    assert turn["heard_text"] == turn["agent_text"]
    assert turn["playback_start"] < 5.5  # it was speaking when the cough came


@pytest.mark.parametrize("question_at", [LEAD_S, 0.0], ids=["after the probe", "over the probe"])
def test_echo_alone_never_interrupts(tmp_path, speech_dir, question_at):
    """Over the probe, the canceller is not trusted: the warm-up gate sets its echo aside, then lets it go."""
    scenario = build(tmp_path / "in.wav", [(speech_dir / QUESTION, question_at)], tail_s=1.0)
    result = replay(scenario["path"], tmp_path, simulate_echo=(120.0, -6.0), **LONG_REPLIES)
    assert len(result.turns) == 1, result.turns
    assert not result.turns[0]["interrupted"]
