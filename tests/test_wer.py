"""The agent's transcripts against faster-whisper's own transcribe(), with the real bundled models."""
from __future__ import annotations

import pytest

from conftest import write_config
from conversation.benchmarks.wer import TOLERANCE, ClipWer, measure
from conversation.config import load_config

# Short clips, one with a reference transcript (scored against it), one without (scored against
# transcribe()). With a 10 s trimmed window the agent heard "Class 1" for "Claflin" in the first
# (37.5% against transcribe()'s 25%) and "every purchases of vote" in the second (60%).
CLIPS = ["lhotse_ES2011a.Headset-0-40s-46s.wav", "lhotse_common_voice_en_651325.mp3"]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_short_clips_are_within_a_point_of_transcribe(speech_dir, tmp_path):
    config = load_config(write_config(tmp_path))
    results = measure(config, [speech_dir / name for name in CLIPS], tmp_path / "wer")
    assert [entry.clip for entry in results] == CLIPS
    assert [entry.scored_against for entry in results] == ["reference", "transcribe()"]
    for entry in results:
        assert entry.turns >= 1 and entry.pipeline, entry
        assert entry.passed, (f"{entry.clip}: the agent {entry.pipeline!r} ({entry.pipeline_wer}) vs "
                              f"transcribe() {entry.whisper!r} ({entry.whisper_wer})")


@pytest.mark.fast
@pytest.mark.parametrize("agent,whisper,passed", [(0.25, 0.25, True), (0.26, 0.25, True), (0.2601, 0.25, False),
                                                  (0.0, 0.1, True), (None, 0.0, False)])
def test_a_clip_passes_within_one_point(agent, whisper, passed):
    entry = ClipWer("clip.wav", "reference", agent, whisper, turns=1, pipeline="", whisper="")
    assert TOLERANCE == 0.01
    assert entry.passed is passed


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_an_utterance_over_30_s_is_decoded_knowing_what_was_said_before(speech_dir):
    """Its windows conditioned on the text before, as transcribe() does: unconditioned, the 37 s
    utterance in silero's clip was heard "Thomas Piketty in his book ... I use for a 4% global wealth tax"."""
    from audio_io.files import read_audio
    from stt.settings import SttSettings
    from stt.whisper import WhisperTranscriber

    audio, rate = read_audio(speech_dir / "silero-vad_test.wav")
    transcriber = WhisperTranscriber(SttSettings())
    transcriber.load()
    # The span the agent cut, from the file's samples: its own replayed samples differ a little, and in a
    # replay they were still heard "I use for" (the word lies near the first 30 s window's end).
    heard = transcriber.transcribe(audio[int(9.04 * rate):int(46.6 * rate)]).text
    assert heard.startswith("That is to say much of political philosophy")
    assert "argues for a 4% global wealth tax." in heard
