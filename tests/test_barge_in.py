"""Barge-in on real clips: the user talks over the agent, with and without echo."""
from __future__ import annotations

import pytest

from conftest import replay
from conversation.benchmarks.scenarios import build, cough, silent_after

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

QUESTION = "lhotse_common_voice_en_651325.mp3"  # "Every purchase is a vote."
INTERRUPTION = "lhotse_ES2011a.Headset-0-40s-46s.wav"  # "I'm Abigail Claflin. You can call me Abbie."
LONG_REPLIES = {"default_persona": "storyteller", "personas.storyteller.llm.max_tokens": 120}
# With echo, which frames the canceller's warm-up gate still takes for echo depends on how the
# replay keeps pace with the agent's output, so on machine load: a busy 2-core machine once
# caught the interruption 0.32 s after the onset. The extra slack holds there; more is a regression.
ECHO_LOAD_SLACK_S = 0.15


def interrupted_conversation(tmp_path, speech_dir, gap_s: float, echo=None):
    scenario = build(tmp_path / "in.wav", [(speech_dir / QUESTION, 0.0), (speech_dir / INTERRUPTION, 2.4 + gap_s)])
    result = replay(scenario["path"], tmp_path, simulate_echo=echo, **LONG_REPLIES)
    # The AMI clip starts with 1.4 s of room noise: the user's onset is where its speech starts.
    return scenario, result


def check_interruption(scenario, result, slack_s: float = 0.0):
    onset = scenario["onsets"][1]
    first, second = result.turns[0], result.turns[-1]
    assert first["interrupted"], result.turns
    late, allowed = first["barge_in_at"] - onset, 0.25 + slack_s
    why = " (under echo this depends on machine load)" if slack_s else ""
    assert -0.25 <= late <= allowed, f"barge-in {late:+.2f}s from the user's onset, over {allowed:.2f}s{why}"
    stop = silent_after(result.output, result.out_rate, onset)
    assert stop is not None and stop <= allowed, f"still talking {stop}s after the user started{why}"
    # History holds only what was heard, and the next reply answers the new question.
    assert first["heard_text"] and len(first["heard_text"]) < len(first["agent_text"])
    assert "abigail" in second["user_text"].lower() or "abby" in second["user_text"].lower() \
        or "abbie" in second["user_text"].lower() or "call me" in second["user_text"].lower()
    assert second["agent_text"] and not second["interrupted"]
    return stop


def test_user_interrupts_the_agent(tmp_path, speech_dir):
    scenario, result = interrupted_conversation(tmp_path, speech_dir, gap_s=1.5)
    check_interruption(scenario, result)


def test_interruption_with_open_speaker_echo(tmp_path, speech_dir):
    scenario, result = interrupted_conversation(tmp_path, speech_dir, gap_s=3.0, echo=(80.0, -10.0))
    check_interruption(scenario, result, slack_s=ECHO_LOAD_SLACK_S)


def test_a_cough_pauses_and_the_reply_completes(tmp_path, speech_dir):
    scenario = build(tmp_path / "in.wav", [(speech_dir / QUESTION, 0.0), (cough(0.15), 5.5)], tail_s=1.0)
    result = replay(scenario["path"], tmp_path, **LONG_REPLIES)
    assert len(result.turns) == 1
    turn = result.turns[0]
    assert not turn["interrupted"]
    assert turn["heard_text"] == turn["agent_text"]
    assert turn["playback_start"] < 5.5  # it was speaking when the cough came


def test_echo_alone_never_interrupts(tmp_path, speech_dir):
    scenario = build(tmp_path / "in.wav", [(speech_dir / QUESTION, 0.0)], tail_s=1.0)
    result = replay(scenario["path"], tmp_path, simulate_echo=(120.0, -6.0), **LONG_REPLIES)
    assert len(result.turns) == 1, result.turns
    assert not result.turns[0]["interrupted"]
