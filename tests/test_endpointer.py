"""The endpointing state machine on synthetic frames, and on real speech."""
import numpy as np
import pytest

from audio_io.files import read_audio
from audio_io.settings import VadSettings
from audio_io.vad import (Endpointer, SpeechDropped, SpeechEnded, SpeechOverheard, SpeechPaused, SpeechResumed,
                          SpeechStarted)

FRAME = 320  # 20 ms at 16 kHz


def events_for(audio: np.ndarray, settings: VadSettings) -> list:
    endpointer, events = Endpointer(settings), []
    for i in range(0, len(audio) - FRAME + 1, FRAME):
        events += endpointer.process(audio[i:i + FRAME], i / 16000)
    return events + endpointer.flush(len(audio) / 16000)


def test_jfk_is_one_utterance_with_pauses(speech_dir):
    audio, _ = read_audio(speech_dir / "faster-whisper_jfk.flac", 16000)
    audio = np.concatenate([audio, np.zeros(32000, np.float32)])  # the replay goes on in silence
    events = events_for(audio, VadSettings())
    kinds = [type(e) for e in events]
    assert kinds.count(SpeechStarted) == 1
    assert kinds.count(SpeechEnded) == 1
    assert SpeechPaused in kinds and SpeechResumed in kinds  # it noticed the pauses, and waited
    ended = next(e for e in events if isinstance(e, SpeechEnded))
    assert 0.0 <= ended.start < 0.6 and 9.5 < ended.end <= 11.0


def test_each_pause_knows_the_longest_one_the_speaker_went_on_after(speech_dir):
    audio, _ = read_audio(speech_dir / "faster-whisper_jfk.flac", 16000)
    pauses = [e for e in events_for(audio, VadSettings()) if isinstance(e, SpeechPaused)]
    assert pauses[0].longest_pause == 0.0
    longest = [e.longest_pause for e in pauses]
    assert longest == sorted(longest) and longest[-1] > 0.5  # JFK pauses about a second mid-sentence


def test_pre_roll_keeps_the_first_syllable(speech_dir):
    audio, _ = read_audio(speech_dir / "lhotse_ES2011a.Headset-0-40s-46s.wav", 16000)
    events = events_for(audio, VadSettings(pre_roll_ms=300))
    ended = next(e for e in events if isinstance(e, SpeechEnded))
    first_sample_time = ended.end + 0.2 - len(ended.audio) / 16000
    assert first_sample_time <= ended.start - 0.25


def test_short_blip_is_dropped():
    rng = np.random.default_rng(0)
    audio = np.zeros(16000 * 2, dtype=np.float32)
    t = np.arange(1600) / 16000
    audio[8000:9600] = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + rng.normal(0, 0.1, 1600))  # 100 ms
    kinds = [type(e) for e in events_for(audio, VadSettings(min_speech_ms=250))]
    assert SpeechEnded not in kinds
    assert SpeechDropped in kinds or SpeechStarted not in kinds


def test_silence_and_noise_give_nothing(speech_dir):
    for name in ("synthetic_silence_16k_3s.wav", "synthetic_whitenoise_-40dBFS_16k_3s.wav"):
        audio, _ = read_audio(speech_dir / name, 16000)
        assert events_for(audio, VadSettings()) == []


def gated_events(audio: np.ndarray, gate_open_at: float) -> list:
    """Frames before `gate_open_at` are marked as maybe echo, as by a canceller not yet converged."""
    endpointer, events = Endpointer(VadSettings()), []
    for i in range(0, len(audio) - FRAME + 1, FRAME):
        events += endpointer.process(audio[i:i + FRAME], i / 16000, echo=i / 16000 < gate_open_at)
    return events


def test_echo_frames_never_start_an_utterance(speech_dir):
    audio, _ = read_audio(speech_dir / "lhotse_ES2011a.Headset-0-40s-46s.wav", 16000)
    assert gated_events(audio, gate_open_at=len(audio) / 16000) == []


def test_speech_behind_the_echo_gate_is_handed_back_when_it_opens(speech_dir):
    audio, _ = read_audio(speech_dir / "lhotse_ES2011a.Headset-0-40s-46s.wav", 16000)
    audio = np.concatenate([audio, np.zeros(16000, np.float32)])
    events = gated_events(audio, gate_open_at=6.5)  # the speaker stopped after the user did
    assert [type(e) for e in events] == [SpeechOverheard]
    heard = events[0]
    assert 1.3 <= heard.start <= 1.7 and heard.at == pytest.approx(6.5, abs=0.02)  # speech from 1.46 s
    assert len(heard.audio) / 16000 >= heard.end - heard.start


def test_speech_still_going_when_the_gate_opens_goes_on_as_one_utterance(speech_dir):
    audio, _ = read_audio(speech_dir / "lhotse_ES2011a.Headset-0-40s-46s.wav", 16000)
    audio = np.concatenate([audio, np.zeros(32000, np.float32)])
    events = gated_events(audio, gate_open_at=3.0)
    assert [type(e) for e in events if not isinstance(e, (SpeechPaused, SpeechResumed))] == [SpeechStarted,
                                                                                              SpeechEnded]
    ended = events[-1]
    assert 1.3 <= ended.start <= 1.7 and ended.end > 4.0  # the speech goes on to 4.5 s
    assert ended.end + 0.2 - len(ended.audio) / 16000 <= ended.start - 0.25  # pre-roll kept behind the gate
