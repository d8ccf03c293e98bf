"""Speech activity, true speech end and audible onset, on synthetic signals and the real clips."""
from __future__ import annotations

import numpy as np
import pytest

from audio_io.files import read_audio
from conftest import NO_SPEECH_CLIPS
from conversation.benchmarks.measure import first_audible, measure_turn, speech_active, speech_mask, true_speech_end

RATE = 16000
HOP_S = 0.005


def voice(seconds: float, level_dbfs: float, f0: float = 140.0) -> np.ndarray:
    """A buzzy harmonic tone, roughly a sustained vowel."""
    t = np.arange(int(seconds * RATE)) / RATE
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12))
    return (wave / np.sqrt(np.mean(wave ** 2)) * 10 ** (level_dbfs / 20)).astype(np.float32)


def noise(seconds: float, level_dbfs: float, seed: int = 0) -> np.ndarray:
    samples = np.random.default_rng(seed).standard_normal(int(seconds * RATE))
    return (samples * 10 ** (level_dbfs / 20)).astype(np.float32)


def place(signal: np.ndarray, burst: np.ndarray, at_s: float) -> np.ndarray:
    a = int(at_s * RATE)
    signal[a:a + len(burst)] += burst
    return signal


def fraction_active(mask: np.ndarray, start_s: float, end_s: float) -> float:
    return float(mask[int(start_s / HOP_S):int(end_s / HOP_S)].mean())


@pytest.fixture(scope="module")
def bursts() -> np.ndarray:
    """Two 'words' at 0.5-1.0 s and 1.5-2.3 s, 30 dB over hiss."""
    signal = noise(3.0, -50)
    place(signal, voice(0.5, -20), 0.5)
    return place(signal, voice(0.8, -20, f0=180), 1.5)


# --- synthetic -----------------------------------------------------------

def test_bursts_in_noise_are_found_to_within_a_few_ms(bursts):
    mask = speech_mask(bursts, RATE)
    assert fraction_active(mask, 0.52, 0.98) == 1.0
    assert fraction_active(mask, 1.52, 2.28) == 1.0
    assert fraction_active(mask, 0.0, 0.48) == 0.0
    assert fraction_active(mask, 1.02, 1.48) == 0.0
    assert fraction_active(mask, 2.32, 3.0) == 0.0


@pytest.mark.parametrize("near, expected", [(2.5, 2.3), (2.9, 2.3), (1.3, 1.0), (2.2, 2.3)])
def test_true_speech_end(bursts, near, expected):
    # 2.2: the endpointer stopped inside the word; the word's real end counts.
    assert true_speech_end(bursts, RATE, near) == pytest.approx(expected, abs=0.015)


def test_no_speech_near_the_logged_end_gives_none(bursts):
    assert true_speech_end(bursts, RATE, near_s=2.95, search_s=0.5) is None


def test_breath_after_speech_is_not_speech():
    """A voice at -20 dBFS, then 400 ms of breath noise 35 dB lower, then room silence."""
    signal = noise(2.0, -75)
    place(signal, voice(0.6, -20), 0.3)
    place(signal, noise(0.4, -55, seed=1), 0.9)
    assert true_speech_end(signal, RATE, near_s=1.3) == pytest.approx(0.9, abs=0.015)


def test_a_click_is_not_speech():
    signal = noise(2.0, -50)
    signal[RATE:RATE + 40] += 0.8
    assert not speech_mask(signal, RATE).any()


@pytest.mark.parametrize("signal", [np.zeros(RATE * 2, dtype=np.float32), noise(2.0, -40)],
                         ids=["digital silence", "white noise"])
def test_steady_signals_have_no_speech(signal):
    assert not speech_mask(signal, RATE).any()


def test_stereo_and_other_rates_work():
    rate = 44100
    t = np.arange(rate * 2) / rate
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * ((t > 0.5) & (t < 1.25))).astype(np.float32)
    stereo = np.stack([tone, tone], axis=1) + noise(2.0 * rate / RATE, -60)[:rate * 2, None]
    assert true_speech_end(stereo, rate, near_s=1.5) == pytest.approx(1.25, abs=0.015)


def test_first_audible():
    out = noise(3.0, -70)  # dither-level noise is not audible
    place(out, voice(0.5, -20), 1.234)
    assert first_audible(out, RATE, 0.0) == pytest.approx(1.234, abs=0.001)
    assert first_audible(out, RATE, 1.5) == pytest.approx(1.5, abs=0.001)
    assert first_audible(out, RATE, 2.0) is None


def test_measure_turn_from_audio_not_from_the_log(bursts):
    """The log says speech ended at 2.5 and playback began at 3.0; the audio says 2.3 and 3.1."""
    speaker = np.zeros(int(4 * RATE), dtype=np.float32)
    place(speaker, voice(0.5, -20), 3.1)
    mic = np.concatenate([bursts, np.zeros(RATE, dtype=np.float32)])
    record = {"turn": 1, "speech_end": 2.5, "endpoint": 2.6, "stt_done": 2.7, "llm_first_token": 2.8,
              "first_chunk_ready": 2.85, "tts_first_audio": 2.95, "committed": 2.7, "playback_start": 3.0}
    row = measure_turn(record, mic, speaker, RATE, speech_mask(mic, RATE))
    assert row["voice_to_voice"] == 500
    assert row["v2v_audio_ms"] == pytest.approx(800, abs=15)
    assert row["endpoint_lag_ms"] == pytest.approx(200, abs=15)
    assert row["onset_vs_log_ms"] == pytest.approx(100, abs=1)
    assert not row["talked_over"] and not row["agent_already_audible"]


def test_a_reply_over_the_users_words_is_flagged(bursts):
    speaker = np.zeros(len(bursts), dtype=np.float32)
    place(speaker, voice(0.3, -20), 2.0)  # the second word lasts until 2.3
    record = {"turn": 1, "speech_end": 1.0, "playback_start": 2.0}
    row = measure_turn(record, bursts, speaker, RATE, speech_mask(bursts, RATE))
    assert row["talked_over"]


# --- the real clips --------------------------------------------------------

def clip(speech_dir, name):
    return read_audio(speech_dir / name)


def test_ami_segments_match_the_corpus_annotation(speech_dir):
    """Annotated: speech 1.46-2.82 s and 3.36-4.36 s, nothing else (room noise, a click at 0.35 s)."""
    audio, rate = clip(speech_dir, "lhotse_ES2011a.Headset-0-40s-46s.wav")
    mask = speech_mask(audio, rate)
    assert fraction_active(mask, 0.0, 1.4) == 0.0
    assert fraction_active(mask, 1.5, 2.8) > 0.85
    assert fraction_active(mask, 2.9, 3.3) < 0.2
    assert fraction_active(mask, 3.4, 4.35) > 0.85
    assert fraction_active(mask, 4.6, 6.0) == 0.0
    # The agent logged its speech end at 4.56 s (webrtcvad heard the tail); the words ended at 4.36.
    assert true_speech_end(audio, rate, near_s=4.56) == pytest.approx(4.36, abs=0.05)
    assert true_speech_end(audio, rate, near_s=3.1) == pytest.approx(2.82, abs=0.05)


def test_jfk_pauses_are_found_through_the_hiss(speech_dir):
    """MANIFEST: pauses ~2.0-3.2 s and ~4.3-5.4 s; the last word runs to the end of the clip."""
    audio, rate = clip(speech_dir, "faster-whisper_jfk.flac")
    mask = speech_mask(audio, rate)
    assert fraction_active(mask, 2.2, 3.2) == 0.0
    assert fraction_active(mask, 4.35, 5.35) == 0.0
    assert fraction_active(mask, 0.7, 1.9) > 0.85
    assert true_speech_end(audio, rate, near_s=2.6) == pytest.approx(2.05, abs=0.1)
    assert true_speech_end(audio, rate, near_s=4.9) == pytest.approx(4.3, abs=0.05)
    assert true_speech_end(audio, rate, near_s=11.02) == pytest.approx(11.0, abs=0.02)


@pytest.mark.parametrize("name, end", [("lhotse_LJ002-0020.wav", 1.42), ("lhotse_LJ002-0035.wav", 1.42),
                                       ("lhotse_common_voice_en_651325.mp3", 2.1)])
def test_short_utterances_end_where_their_energy_does(speech_dir, name, end):
    audio, rate = clip(speech_dir, name)
    assert true_speech_end(audio, rate, near_s=len(audio) / rate) == pytest.approx(end, abs=0.05)


@pytest.mark.parametrize("name", NO_SPEECH_CLIPS)
def test_no_speech_clips_have_no_speech(speech_dir, name):
    audio, rate = clip(speech_dir, name)
    assert not speech_mask(audio, rate).any()


def test_speech_active(bursts):
    mask = speech_mask(bursts, RATE)
    assert speech_active(mask, 0.9, 1.1) and not speech_active(mask, 1.1, 1.4)
