"""XTTS backend mechanics on a tiny random-weight checkpoint: chunks, cache,
cancellation, order, errors. Random weights speak noise, so nothing here
listens to the audio; every sentence runs to the audio token cap."""
from __future__ import annotations

import json
import logging
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from conversation.benchmarks.tts import run_tts_benchmark, xtts_benchmark_variants
from tts.base import SpeechRequest
from tts.voice_cache import VoiceCache, conditioning_key, model_identity
from tts.xtts import (
    ReferenceAudioError,
    SentenceFader,
    TextTooLongError,
    XttsModelMissing,
    XttsSynthesizer,
)
from tts.xtts_settings import UnsupportedLanguageError, XttsModelSettings, XttsVoice, normalize_language

pytestmark = pytest.mark.timeout(120)

SPEECH = Path(__file__).resolve().parents[1].parent / "shared" / "speech"
REFERENCE = SPEECH / "coqui-ai-TTS_LJ001-0002.wav"
SECOND_REFERENCE = SPEECH / "lhotse_LJ002-0020.wav"
TOKEN_CAP = 8
CHUNK = 4
FADE = 120  # 5 ms at 24 kHz, the default sentence fade


def samples_for_tokens(tokens: int) -> int:
    """Audio samples XTTS decodes from `tokens` GPT tokens (1024 samples at
    22.05 kHz each, resampled to 24 kHz, in whole 256-sample decoder frames)."""
    return math.floor(tokens * 1024 / 256 * 24000 / 22050) * 256


def make_synth(checkpoint: Path, cache_dir: Path | None, **overrides: object) -> XttsSynthesizer:
    settings = {"checkpoint_dir": checkpoint, "cache_dir": cache_dir, "max_audio_tokens": TOKEN_CAP, "warmup": False}
    synth = XttsSynthesizer(XttsModelSettings(**{**settings, **overrides}))
    synth.load()
    return synth


def make_voice(**overrides: object) -> XttsVoice:
    settings = {"references": [REFERENCE], "first_stream_chunk_size": CHUNK, "stream_chunk_size": 30,
                "gpt_cond_len": 6, "gpt_cond_chunk_len": 6}  # fmt: skip
    return XttsVoice(**{**settings, **overrides})


def speak(synth: XttsSynthesizer, text: str, voice: XttsVoice, **request: object) -> list[np.ndarray]:
    return list(synth.stream(SpeechRequest(text=text, voice=voice, **request)))


def count_calls(module: object) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.fixture(scope="module")
def synth(xtts_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> XttsSynthesizer:  # noqa: F811
    loaded = make_synth(xtts_checkpoint, tmp_path_factory.mktemp("voices"))
    yield loaded
    loaded.close()


# ---- errors that need no model ------------------------------------------
def test_missing_checkpoint_dir_says_where_to_get_weights(tmp_path: Path) -> None:
    synth = XttsSynthesizer(XttsModelSettings(checkpoint_dir=tmp_path / "absent"))
    with pytest.raises(XttsModelMissing) as caught:
        synth.load()
    message = str(caught.value)
    assert "\n" not in message
    assert "absent" in message and "coqui/XTTS-v2" in message and "Coqui Public Model License" in message


def test_missing_checkpoint_file_is_named(tmp_path: Path) -> None:
    for name in ("config.json", "vocab.json"):
        (tmp_path / name).write_text("{}")
    with pytest.raises(XttsModelMissing, match="lacks model.pth"):
        XttsSynthesizer(XttsModelSettings(checkpoint_dir=tmp_path)).load()


@pytest.mark.parametrize(
    ("given", "expected"), [("en", "en"), ("EN-us", "en"), ("zh", "zh-cn"), ("zh_CN", "zh-cn"), ("hi", "hi")]
)
def test_language_codes_normalize(given: str, expected: str) -> None:
    assert normalize_language(given) == expected


def test_unknown_language_and_fields_are_rejected() -> None:
    with pytest.raises(UnsupportedLanguageError, match="supported: en, es"):
        normalize_language("xx")
    with pytest.raises(ValidationError):
        XttsVoice(references=[REFERENCE], language="klingon")
    with pytest.raises(ValidationError):
        XttsVoice(references=[REFERENCE], stream_chunk=20)
    with pytest.raises(ValidationError):
        XttsModelSettings(checkpoint_dir=Path("x"), fp16=True)


def test_sentence_fader_keeps_length_and_silences_the_ends() -> None:
    fader = SentenceFader(4)
    pieces = [np.ones(6, np.float32), np.ones(2, np.float32), np.ones(5, np.float32)]
    out = [fader.push(piece.copy()) for piece in pieces] + [fader.finish()]
    audio = np.concatenate(out)
    assert audio.size == 13
    assert audio[0] == 0.0 and audio[-1] == 0.0
    assert np.all(audio[4:9] == 1.0)


def test_cache_key_tracks_model_clips_order_and_settings() -> None:
    base = conditioning_key("model-a", ["clip1", "clip2"], {"gpt_cond_len": 6})
    assert base == conditioning_key("model-a", ["clip1", "clip2"], {"gpt_cond_len": 6})
    assert base != conditioning_key("model-b", ["clip1", "clip2"], {"gpt_cond_len": 6})
    assert base != conditioning_key("model-a", ["clip2", "clip1"], {"gpt_cond_len": 6})
    assert base != conditioning_key("model-a", ["clip1", "clip2"], {"gpt_cond_len": 7})


def test_unreadable_cache_file_is_a_miss(tmp_path: Path) -> None:
    (tmp_path / "k.npz").write_bytes(b"not a zip")
    cache = VoiceCache(tmp_path, encode=lambda value: {"v": value}, decode=lambda arrays: arrays["v"])
    assert cache.get("k", lambda: np.arange(3)).tolist() == [0, 1, 2]
    assert cache.stats.computations == 1
    fresh = VoiceCache(tmp_path, encode=lambda value: {"v": value}, decode=lambda arrays: arrays["v"])
    assert fresh.get("k", lambda: np.zeros(1)).tolist() == [0, 1, 2]
    assert fresh.stats.disk_hits == 1
    assert "k" in fresh and "other" not in fresh


# ---- loading --------------------------------------------------------------
def test_load_logs_what_is_active_and_caps_tokens(xtts_checkpoint: Path, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    caplog.set_level(logging.INFO, logger="tts.xtts")
    synth = make_synth(xtts_checkpoint, None, use_deepspeed=True, max_audio_tokens=10_000, warmup=True)
    assert synth.runtime.device == "cpu"
    assert not (synth.runtime.fp16_gpt or synth.runtime.fp16_decoder or synth.runtime.deepspeed)
    assert synth.runtime.max_audio_tokens == synth.model.gpt.max_gen_mel_tokens == 61  # 64 positions - 3
    assert "fp16 GPT off, fp16 decoder off, DeepSpeed off" in caplog.text
    assert "falling back to the slow CPU" in caplog.text
    assert synth.describe()["device"] == "cpu"


def test_model_identity_changes_with_config(xtts_checkpoint: Path, tmp_path: Path) -> None:  # noqa: F811
    for name in ("config.json", "vocab.json", "model.pth"):
        (tmp_path / name).symlink_to(xtts_checkpoint / name)
    assert model_identity(tmp_path) == model_identity(xtts_checkpoint)
    (tmp_path / "config.json").unlink()
    config = json.loads((xtts_checkpoint / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "temperature": 0.5}))
    assert model_identity(tmp_path) != model_identity(xtts_checkpoint)


# ---- streaming --------------------------------------------------------------
def test_first_sentence_streams_in_small_chunks(synth: XttsSynthesizer) -> None:
    voice = make_voice()
    first = speak(synth, "Hello there, how are you?", voice, first_in_reply=True)
    later = speak(synth, "Hello there, how are you?", voice)
    overlap = voice.overlap_wav_len
    # Chunks at 4 and 8 tokens (each keeping `overlap` back for the crossfade),
    # the cap's closing decode releases the overlap, then the faded tail.
    four, eight = samples_for_tokens(CHUNK), samples_for_tokens(TOKEN_CAP)
    assert [len(c) for c in first] == [four - overlap - FADE, eight - four, overlap, FADE]
    # Chunk size 30 > cap: one decode at the end, then the faded tail.
    assert [len(c) for c in later] == [eight - FADE, FADE]
    for chunks in (first, later):
        audio = np.concatenate(chunks)
        assert all(c.dtype == np.float32 and c.ndim == 1 for c in chunks)
        assert np.all(np.abs(audio) <= 1.0) and audio[0] == 0.0 and audio[-1] == 0.0


def test_speed_scales_audio_length(synth: XttsSynthesizer) -> None:
    voice = make_voice()
    normal = sum(map(len, speak(synth, "Quick test.", voice)))
    fast = sum(map(len, speak(synth, "Quick test.", voice, speed=2.0)))
    assert 0.4 < fast / normal < 0.6


def test_sentences_come_out_in_order_without_leaking_state(synth: XttsSynthesizer) -> None:
    import torch

    texts = ["First sentence.", "The second one is longer.", "Third."]
    voice = make_voice()

    def say(index: int) -> np.ndarray:
        torch.manual_seed(index)  # sampling is random; fix it per sentence
        return np.concatenate(speak(synth, texts[index], voice))

    alone = [say(index) for index in range(3)]
    assert not np.array_equal(alone[0], alone[1])
    assert all(np.array_equal(say(index), alone[index]) for index in (2, 0, 1))


def test_cancel_mid_sentence_stops_within_one_chunk(xtts_checkpoint: Path) -> None:  # noqa: F811
    synth = make_synth(xtts_checkpoint, None, max_audio_tokens=24)
    decodes = count_calls(synth.model.hifigan_decoder)
    gpt_steps = count_calls(synth.model.gpt.gpt_inference)
    request = SpeechRequest(text="This sentence would run for a while.", voice=make_voice(), first_in_reply=True)
    received = []
    for chunk in synth.stream(request):
        received.append(chunk)
        request.cancel.set()  # barge-in while the first chunk plays
    assert len(received) == 1
    assert decodes[0] == 1
    assert gpt_steps[0] <= CHUNK + 1  # never started the next chunk's tokens


def test_cancel_from_another_thread_before_start(synth: XttsSynthesizer) -> None:
    request = SpeechRequest(text="Never spoken.", voice=make_voice())
    worker = threading.Thread(target=request.cancel.set)
    worker.start()
    worker.join()
    decodes = count_calls(synth.model.hifigan_decoder)
    assert list(synth.stream(request)) == []
    assert decodes[0] == 0


# ---- voices and the cache -------------------------------------------------
def test_voice_cache_hit_after_restart(xtts_checkpoint: Path, tmp_path: Path) -> None:  # noqa: F811
    voice = make_voice()
    first = make_synth(xtts_checkpoint, tmp_path)
    speak(first, "One.", voice)
    speak(first, "Two.", voice)
    assert first.conditioning_computations == 1
    computed = first.prepare_voice(voice)

    restarted = make_synth(xtts_checkpoint, tmp_path)
    speak(restarted, "Three.", voice)
    assert restarted.conditioning_computations == 0
    assert restarted.cache_stats.disk_hits == 1
    cached = restarted.prepare_voice(voice)
    assert np.allclose(cached.gpt_cond_latent.numpy(), computed.gpt_cond_latent.numpy())
    assert np.allclose(cached.speaker_embedding.numpy(), computed.speaker_embedding.numpy())

    restarted.prepare_voice(voice.model_copy(update={"gpt_cond_len": 5, "gpt_cond_chunk_len": 5}))
    assert restarted.conditioning_computations == 1


def test_voice_swaps_recompute_nothing(synth: XttsSynthesizer) -> None:
    single, double = make_voice(), make_voice(references=[REFERENCE, SECOND_REFERENCE])
    assert synth.voice_key(single) != synth.voice_key(double)
    synth.prepare_voice(single)
    synth.prepare_voice(double)  # several clips make one voice
    prepared = synth.conditioning_computations
    for voice in (double, single, double):
        assert len(speak(synth, "Swap.", voice)) == 2
    assert synth.conditioning_computations == prepared


def test_bad_references_give_one_line_errors(synth: XttsSynthesizer, tmp_path: Path) -> None:
    import soundfile

    with pytest.raises(ReferenceAudioError, match="not found"):
        speak(synth, "Hi.", make_voice(references=[tmp_path / "nope.wav"]))
    short = tmp_path / "short.wav"
    soundfile.write(short, np.zeros(2205, np.float32), 22050)
    with pytest.raises(ReferenceAudioError, match="too short") as caught:
        speak(synth, "Hi.", make_voice(references=[short]))
    assert "\n" not in str(caught.value)


def test_bad_requests_fail_clearly(synth: XttsSynthesizer) -> None:
    with pytest.raises(UnsupportedLanguageError):
        synth.stream(SpeechRequest(text="Hi.", voice=make_voice(), language="xx"))
    with pytest.raises(TypeError, match="XttsVoice"):
        synth.stream(SpeechRequest(text="Hi.", voice={"references": []}))
    with pytest.raises(TextTooLongError, match="over the limit"):
        speak(synth, "word " * 300, make_voice())
    assert speak(synth, "   ", make_voice()) == []


# ---- fp16 code path, run on the CPU since no GPU is at hand ----------------
def test_fp16_path_streams_float32_audio(xtts_checkpoint: Path) -> None:  # noqa: F811
    import torch

    synth = XttsSynthesizer(
        XttsModelSettings(checkpoint_dir=xtts_checkpoint, cache_dir=None, max_audio_tokens=CHUNK, warmup=False)
    )
    synth._allow_cpu_fp16 = True
    synth.load()
    assert synth.runtime.fp16_gpt and synth.runtime.fp16_decoder
    assert synth.model.gpt.gpt.h[0].attn.c_attn.weight.dtype == torch.float16
    assert synth.model.gpt.conditioning_encoder.init.weight.dtype == torch.float32  # cloning stays fp32
    chunks = speak(synth, "Half precision.", make_voice(stream_chunk_size=CHUNK))
    audio = np.concatenate(chunks)
    assert audio.dtype == np.float32 and np.isfinite(audio).all()
    assert audio.size == samples_for_tokens(CHUNK)


def test_fp16_decoder_that_overflows_falls_back_to_fp32(
    xtts_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    import torch

    apply_fp16 = XttsSynthesizer._apply_fp16

    def apply_then_overflow(self: XttsSynthesizer, model: Any, device: str, deepspeed_on: bool) -> tuple[bool, bool]:
        result = apply_fp16(self, model, device, deepspeed_on)
        decoder = model.hifigan_decoder.waveform_decoder
        # Stand-in for HiFi-GAN overflowing in fp16: NaN while it runs in half.
        decoder.register_forward_hook(lambda module, args, out: out * torch.nan if out.dtype == torch.float16 else out)
        return result

    monkeypatch.setattr(XttsSynthesizer, "_apply_fp16", apply_then_overflow)
    synth = XttsSynthesizer(
        XttsModelSettings(checkpoint_dir=xtts_checkpoint, cache_dir=None, max_audio_tokens=CHUNK, fp16_gpt=False)
    )
    synth._allow_cpu_fp16 = True
    synth.load()
    assert synth.runtime.fp16_decoder is False
    assert synth.model.hifigan_decoder.waveform_decoder.conv_pre.weight.dtype == torch.float32
    assert "using float32 for the decoder" in caplog.text
    assert np.isfinite(np.concatenate(speak(synth, "Fine again.", make_voice()))).all()


# ---- benchmark -------------------------------------------------------------
class _FakeSynth:
    sample_rate = 16000

    def load(self) -> None:
        self.loaded = True

    def stream(self, request: SpeechRequest):
        yield np.zeros(1600, np.float32)
        yield np.zeros(3200, np.float32)

    def close(self) -> None:
        self.loaded = False


def test_benchmark_reports_first_audio_and_rtf(synth: XttsSynthesizer, tmp_path: Path) -> None:
    fake = _FakeSynth()
    result = run_tts_benchmark(
        {"fake": (fake, None), "xtts": (synth, make_voice())},
        texts={"short": "Hi there."},
        repeats=2,
        json_path=tmp_path / "bench.json",
        print_table=True,
    )
    stored = json.loads((tmp_path / "bench.json").read_text())
    assert {row["synthesizer"] for row in stored["summaries"]} == {"fake", "xtts"}
    assert stored["setups"]["xtts"]["device"] == "cpu" and stored["setups"]["xtts"]["deepspeed"] is False
    fake_summary = next(s for s in result.summaries if s.synthesizer == "fake")
    assert fake_summary.runs == 2 and fake_summary.audio_s == pytest.approx(0.3)
    assert all(run.first_audio_s <= run.wall_s and run.rtf > 0 for run in result.runs)

    run_tts_benchmark({"fake": (fake, None)}, texts={"s": "x"}, repeats=1, load_each=True, print_table=False)
    assert fake.loaded is False


def test_benchmark_variants_cover_fp16_and_deepspeed() -> None:
    base = XttsModelSettings(checkpoint_dir=Path("xtts-v2"))
    assert list(xtts_benchmark_variants(base, cuda=False)) == ["xtts"]
    gpu = xtts_benchmark_variants(base, cuda=True)
    assert len(gpu) == 4
    assert {(s.fp16_gpt, s.use_deepspeed) for s in gpu.values()} == {(a, b) for a in (0, 1) for b in (0, 1)}
