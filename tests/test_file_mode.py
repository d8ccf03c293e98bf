"""The whole agent replayed on real recordings, with the real bundled models."""
from __future__ import annotations

import pytest

from conftest import NO_SPEECH_CLIPS
from conversation.turn import TIMESTAMPS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

BLOCK_S = 0.02  # audio.block_ms
SPEAKING_CLIPS = ["faster-whisper_jfk.flac", "lhotse_ES2011a.Headset-0-40s-46s.wav", "silero-vad_test.wav"]


def test_jfk_is_one_turn_despite_its_pauses(replayed):
    result = replayed("faster-whisper_jfk.flac")
    assert len(result.turns) == 1, [t["user_text"] for t in result.turns]
    text = result.turns[0]["user_text"].lower().replace(",", "")
    assert "ask not what your country can do for you" in text


@pytest.mark.parametrize("clip", NO_SPEECH_CLIPS)
def test_no_speech_gives_no_turn(replayed, clip):
    result = replayed(clip)
    assert result.turns == []
    assert result.output_rms(0) < 1e-4  # and the agent stayed silent


@pytest.mark.parametrize("clip", SPEAKING_CLIPS[1:])
def test_speech_gives_turns(replayed, clip):
    result = replayed(clip)
    assert result.turns, "expected at least one turn"
    for turn in result.turns:
        assert turn["user_text"].strip()


@pytest.mark.parametrize("clip", SPEAKING_CLIPS)
def test_every_reply_is_audible_after_its_speech_end(replayed, clip):
    result = replayed(clip)
    for turn in result.turns:
        assert turn["agent_text"].strip(), turn
        start = turn["playback_start"]
        assert start is not None and start >= turn["speech_end"]
        stopped = turn["playback_stopped_at"]
        if stopped is not None and stopped - start < 0.2:
            # The speaker talked on as the reply began (a monologue's next sentence): it was cut at
            # once, before anything but its lead-in could play. That is barge-in, not a silent reply.
            assert turn["interrupted"] and turn["barge_in_at"] is not None, turn
        else:
            assert result.output_rms(turn["speech_end"], start + 1.0) > 0.01, turn
        # Nothing is played between the end of speech and the logged playback start.
        assert result.output_rms(turn["speech_end"], max(turn["speech_end"], start - 0.01)) < 1e-3


@pytest.mark.parametrize("clip", SPEAKING_CLIPS)
def test_timestamps_present_and_in_order(replayed, clip):
    for turn in replayed(clip).turns:
        times = [turn[name] for name in TIMESTAMPS]
        assert all(t is not None for t in times), turn
        # The file replay's device reads each output block at its first sample's time; on a busy machine
        # it reads it a little late, and audio synthesized meanwhile plays from that block's start
        # (once: first audio 5.121, playback 5.120). A real device plays a block later still.
        *work, first_audio, playback = times
        assert work == sorted(work) and work[-1] <= first_audio, dict(zip(TIMESTAMPS, times))
        assert playback >= first_audio - BLOCK_S, dict(zip(TIMESTAMPS, times))
        assert turn["voice_to_voice_ms"] == round((turn["playback_start"] - turn["speech_end"]) * 1000)


@pytest.mark.parametrize("clip", SPEAKING_CLIPS)
def test_output_is_aligned_with_input(replayed, clip):
    result = replayed(clip)
    in_seconds = len(result.input) / result.in_rate
    out_seconds = len(result.output) / result.out_rate
    assert result.out_rate == result.in_rate  # sample for sample
    assert out_seconds >= in_seconds
    last = max((t["playback_start"] for t in result.turns), default=0)
    assert out_seconds > last


def test_agent_never_talks_over_the_user(replayed):
    """No reply starts while the user is still speaking (per the endpointer's own view)."""
    for clip in SPEAKING_CLIPS:
        turns = replayed(clip).turns
        for before, after in zip(turns, turns[1:]):
            assert after["speech_start"] >= before["speech_start"]
        for turn in turns:
            assert turn["playback_start"] >= turn["committed"] >= turn["speech_end"]
