"""The endpointing state machine on synthetic frames, and on real speech."""
import numpy as np

from audio_io.files import read_audio
from audio_io.settings import VadSettings
from audio_io.vad import Endpointer, SpeechDropped, SpeechEnded, SpeechPaused, SpeechResumed, SpeechStarted

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


def test_echo_frames_are_never_speech(speech_dir):
    audio, _ = read_audio(speech_dir / "lhotse_ES2011a.Headset-0-40s-46s.wav", 16000)
    endpointer, events = Endpointer(VadSettings()), []
    for i in range(0, len(audio) - FRAME + 1, FRAME):
        events += endpointer.process(audio[i:i + FRAME], i / 16000, echo=True)
    assert events == []
