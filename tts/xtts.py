"""Coqui XTTS v2 streaming synthesizer (coqui-tts, the maintained fork).

torch and coqui-tts are imported in `load()` only, so importing this module
costs nothing and a missing install gives a one-line error. The checkpoint
check, the loading errors and the model set-up are in tts/xtts_loading.py;
their public names are importable from here too.
"""
from __future__ import annotations

import functools
import importlib.util
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tts.base import SpeechRequest
from tts.voice_cache import CacheStats, VoiceCache, conditioning_key, file_digest, model_identity
from tts.xtts_loading import (XttsModelMissing, XttsNotInstalledError, XttsRuntime, XttsUnavailableError,
                              cast_to_own_dtype, check_checkpoint, gpt_to_half, import_torch_backend, load_model)
from tts.xtts_settings import XttsModelSettings, XttsVoice, normalize_language

if TYPE_CHECKING:
    import torch

logger = logging.getLogger("tts.xtts")

# What callers use; the loading errors and check_checkpoint are defined in tts/xtts_loading.py.
__all__ = ["Conditioning", "ReferenceAudioError", "SentenceFader", "TextTooLongError", "XttsModelMissing",
           "XttsNotInstalledError", "XttsRuntime", "XttsSynthesizer", "XttsUnavailableError", "check_checkpoint"]

# Languages whose text front end needs an optional coqui-tts extra.
_LANGUAGE_EXTRAS = {"ja": "ja", "ko": "ko", "zh-cn": "zh"}
# XTTS decodes 22.05 kHz GPT frames into 24 kHz audio.
OUTPUT_SAMPLE_RATE = 24000


class ReferenceAudioError(ValueError):
    """A voice's reference clips are missing, unreadable or too short."""


class TextTooLongError(ValueError):
    """More text tokens than the XTTS GPT accepts in one go."""


@dataclass(frozen=True)
class Conditioning:
    """A voice as XTTS consumes it, kept on the model's device."""

    gpt_cond_latent: torch.Tensor
    speaker_embedding: torch.Tensor


class XttsSynthesizer:
    """The `Synthesizer` protocol over XTTS `inference_stream`."""

    sample_rate = OUTPUT_SAMPLE_RATE

    def __init__(self, settings: XttsModelSettings) -> None:
        self.settings = settings
        self.model: Any = None  # TTS.tts.models.xtts.Xtts once loaded
        self.runtime: XttsRuntime | None = None
        self._model_id = ""
        self._cache: VoiceCache[Conditioning] | None = None
        # (path, size, mtime) -> sha256, so a clip is hashed once per process.
        self._clip_digests: dict[tuple[str, int, int], str] = {}
        # Testing hook: exercise the fp16 code path on a CPU-only machine.
        self._allow_cpu_fp16 = False

    # ---- loading -------------------------------------------------------
    def load(self) -> None:
        if self.model is not None:
            return
        checkpoint_dir = self.settings.checkpoint_dir
        check_checkpoint(checkpoint_dir)
        torch = import_torch_backend()
        started = time.perf_counter()
        device = self._pick_device(torch)
        deepspeed_on = self._deepspeed_wanted(device)
        model, deepspeed_on = load_model(checkpoint_dir, deepspeed_on)
        model.to(device)
        self.model = model
        try:
            token_cap = self._cap_audio_tokens(model)
            fp16_gpt, fp16_decoder = self._apply_fp16(model, device, deepspeed_on)
            self.runtime = XttsRuntime(
                device=device,
                fp16_gpt=fp16_gpt,
                fp16_decoder=fp16_decoder,
                deepspeed=deepspeed_on,
                kv_cache=True,
                max_audio_tokens=token_cap,
            )
            # Identity after loading: coqui-tts may rewrite an old model.pth once.
            self._model_id = model_identity(checkpoint_dir)
            self._cache = VoiceCache(self.settings.cache_dir, _encode_conditioning, self._decode_conditioning)
            if self.settings.warmup:
                self._warm_up()
        except BaseException:
            self.close()  # a failed load leaves nothing half-loaded behind
            raise
        logger.info(
            "XTTS ready in %.1fs on %s: fp16 GPT %s, fp16 decoder %s, DeepSpeed %s, KV cache on, "
            "audio token cap %d",
            time.perf_counter() - started,
            device,
            _on_off(self.runtime.fp16_gpt),
            _on_off(self.runtime.fp16_decoder),
            _on_off(deepspeed_on),
            token_cap,
        )

    def _pick_device(self, torch: Any) -> str:
        wanted = self.settings.device
        if wanted == "cpu":
            logger.info("XTTS runs on the CPU as configured; expect slower than real time")
            return "cpu"
        if torch.cuda.is_available():
            return "cuda"
        logger.warning("XTTS: CUDA is not available (device=%s); falling back to the slow CPU", wanted)
        return "cpu"

    def _deepspeed_wanted(self, device: str) -> bool:
        if not self.settings.use_deepspeed:
            return False
        if device != "cuda":
            logger.info("XTTS: DeepSpeed needs CUDA; not used")
            return False
        if importlib.util.find_spec("deepspeed") is None:
            logger.warning("XTTS: use_deepspeed is set but deepspeed is not installed; not used")
            return False
        return True

    def _cap_audio_tokens(self, model: Any) -> int:
        # Random or confused weights may never emit the stop token; the cap
        # bounds the work per sentence. It cannot exceed the position table.
        ceiling = int(model.gpt.max_gen_mel_tokens)
        wanted = self.settings.max_audio_tokens
        if wanted is not None and wanted > ceiling:
            logger.warning("XTTS: max_audio_tokens %d exceeds this checkpoint's %d; using %d", wanted, ceiling, ceiling)
        cap = ceiling if wanted is None else min(wanted, ceiling)
        model.gpt.max_gen_mel_tokens = cap
        return cap

    def _apply_fp16(self, model: Any, device: str, deepspeed_on: bool) -> tuple[bool, bool]:
        fp16_possible = device == "cuda" or self._allow_cpu_fp16
        if not fp16_possible:
            if self.settings.fp16_gpt or self.settings.fp16_decoder:
                logger.info("XTTS: fp16 needs CUDA; running float32")
            return False, False
        # DeepSpeed already turned the GPT to fp16 with its own kernels.
        fp16_gpt = deepspeed_on or self.settings.fp16_gpt
        if self.settings.fp16_gpt and not deepspeed_on:
            gpt_to_half(model)
        if self.settings.fp16_decoder:
            model.hifigan_decoder.waveform_decoder.half()
        # Latents and speaker embedding arrive in whatever dtype the GPT and the
        # fp32 conditioning produced; the decoder takes its own.
        model.hifigan_decoder.waveform_decoder.register_forward_pre_hook(cast_to_own_dtype, with_kwargs=True)
        return fp16_gpt, self.settings.fp16_decoder

    def _warm_up(self) -> None:
        """One short synthesis so the first real sentence pays no start-up cost."""
        import torch

        noise = torch.Generator().manual_seed(0)
        with torch.inference_mode():
            audio = torch.randn(1, 22050, generator=noise) * 0.05
            latent = self.model.get_gpt_cond_latents(audio.to(self.runtime.device), 22050, length=1, chunk_length=1)
            speaker = self.model.get_speaker_embedding(audio.to(self.runtime.device), 22050)
        first = self._first_chunk("Hello.", "en", Conditioning(latent, speaker))
        if self.runtime.fp16_decoder and not np.isfinite(first).all():
            # HiFi-GAN overflowed in fp16: keep it in float32 instead.
            logger.warning("XTTS: fp16 decoder produced non-finite audio; using float32 for the decoder")
            self.model.hifigan_decoder.waveform_decoder.float()
            self.runtime = XttsRuntime(**{**asdict(self.runtime), "fp16_decoder": False})
            first = self._first_chunk("Hello.", "en", Conditioning(latent, speaker))
        if not np.isfinite(first).all():
            logger.warning("XTTS: warm-up audio is not finite; try fp16_gpt: false")

    def _first_chunk(self, text: str, language: str, conditioning: Conditioning) -> np.ndarray:
        chunks = self.model.inference_stream(
            text, language, conditioning.gpt_cond_latent, conditioning.speaker_embedding, stream_chunk_size=4
        )
        try:
            return _to_host(next(chunks))
        finally:
            chunks.close()

    # ---- voices --------------------------------------------------------
    def prepare_voice(self, voice: XttsVoice) -> Conditioning:
        """Compute (or fetch from cache) a voice's conditioning; `voices add` uses this."""
        self._require_loaded()
        key = self.voice_key(voice)
        return self._cache.get(key, functools.partial(self._compute_conditioning, voice))

    def voice_key(self, voice: XttsVoice) -> str:
        clip_digests = [self._clip_digest(path) for path in voice.references]
        return conditioning_key(self._model_id, clip_digests, voice.conditioning_settings())

    @property
    def cache_stats(self) -> CacheStats:
        return self._cache.stats if self._cache is not None else CacheStats()

    @property
    def conditioning_computations(self) -> int:
        """How many times conditioning really ran (0 when all came from cache)."""
        return self.cache_stats.computations

    def _clip_digest(self, path: Path) -> str:
        try:
            stat = path.stat()
        except OSError:
            raise ReferenceAudioError(f"voice reference clip {path} not found") from None
        signature = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if signature not in self._clip_digests:
            self._clip_digests[signature] = file_digest(path)
        return self._clip_digests[signature]

    def _compute_conditioning(self, voice: XttsVoice) -> Conditioning:
        clips = [str(path) for path in voice.references]
        try:
            with warnings.catch_warnings():
                # torchaudio announces its 2.9 loader change on every load.
                warnings.simplefilter("ignore", UserWarning)
                latent, speaker = self.model.get_conditioning_latents(
                    audio_path=clips, load_sr=22050, **voice.conditioning_settings()
                )
        except (RuntimeError, OSError, ValueError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ReferenceAudioError(f"cannot clone voice from {', '.join(clips)}: {reason}") from error
        return Conditioning(latent, speaker)

    def _decode_conditioning(self, arrays: dict[str, np.ndarray]) -> Conditioning:
        import torch

        device = self.runtime.device
        return Conditioning(
            torch.from_numpy(arrays["gpt_cond_latent"]).to(device),
            torch.from_numpy(arrays["speaker_embedding"]).to(device),
        )

    # ---- synthesis -----------------------------------------------------
    def stream(self, request: SpeechRequest) -> Iterator[np.ndarray]:
        """Cheap checks now; model work happens as the caller pulls chunks."""
        self._require_loaded()
        voice = request.voice
        if not isinstance(voice, XttsVoice):
            raise TypeError(f"XTTS needs an XttsVoice, got {type(voice).__name__}")
        language = normalize_language(request.language or voice.language)
        text = request.text.strip()
        if not text or request.cancel.is_set():
            return iter(())
        return self._generate(request, voice, language, text)

    def _generate(self, request: SpeechRequest, voice: XttsVoice, language: str, text: str) -> Iterator[np.ndarray]:
        conditioning = self.prepare_voice(voice)
        self._check_text(text, language)
        chunk_size = voice.first_stream_chunk_size if request.first_in_reply else voice.stream_chunk_size
        chunks = self.model.inference_stream(
            text,
            language,
            conditioning.gpt_cond_latent,
            conditioning.speaker_embedding,
            stream_chunk_size=chunk_size,
            overlap_wav_len=voice.overlap_wav_len,
            temperature=voice.temperature,
            length_penalty=voice.length_penalty,
            repetition_penalty=voice.repetition_penalty,
            top_k=voice.top_k,
            top_p=voice.top_p,
            speed=voice.speed * request.speed,
            enable_text_splitting=voice.enable_text_splitting,
        )
        fader = SentenceFader(round(self.settings.sentence_fade_ms * self.sample_rate / 1000))
        try:
            while not request.cancel.is_set():
                try:
                    wav = next(chunks)
                except StopIteration:
                    tail = fader.finish()
                    if tail.size:
                        yield tail
                    return
                audio = fader.push(_to_host(wav))
                if audio.size:
                    yield audio
        finally:
            # On cancel this ends the GPT generator now: no more GPU work.
            chunks.close()

    def _check_text(self, text: str, language: str) -> None:
        try:
            tokens = self.model.tokenizer.encode(text.lower(), lang=language)
        except ImportError as error:
            extra = _LANGUAGE_EXTRAS.get(language, "languages")
            detail = f"no module {error.name}" if error.name else str(error)
            raise XttsNotInstalledError(f"XTTS language {language!r} needs coqui-tts[{extra}] ({detail})") from None
        limit = int(self.model.args.gpt_max_text_tokens)
        if len(tokens) >= limit:
            raise TextTooLongError(f"text has {len(tokens)} XTTS tokens, over the limit of {limit - 1}: split it")

    # ---- misc ----------------------------------------------------------
    def describe(self) -> dict[str, object]:
        """Runtime facts for benchmark reports."""
        info: dict[str, object] = {"backend": "xtts", "sample_rate": self.sample_rate}
        if self.runtime is not None:
            info.update(asdict(self.runtime))
        return info

    def release_memory(self) -> None:
        """Nothing to do: torch's CPU buffers go back to malloc, and its CUDA cache is kept for speed."""

    def close(self) -> None:
        device = self.runtime.device if self.runtime else "cpu"
        self.model = None
        self._cache = None
        self.runtime = None
        if device == "cuda":
            import torch

            torch.cuda.empty_cache()

    def _require_loaded(self) -> None:
        if self.model is None:
            raise RuntimeError("XttsSynthesizer.load() must be called first")


class SentenceFader:
    """Fade in a sentence's first samples and fade out its last ones.

    XTTS crossfades chunks inside a sentence itself; this guards the joins
    between sentences (and the very start and end) against clicks. It holds
    back only `fade_len` samples, so it adds no noticeable latency.
    """

    def __init__(self, fade_len: int) -> None:
        self._fade_len = fade_len
        self._held = np.zeros(0, dtype=np.float32)
        self._started = False

    def push(self, audio: np.ndarray) -> np.ndarray:
        if self._held.size:
            audio = np.concatenate([self._held, audio])
        if not self._started and audio.size:
            ramp = min(self._fade_len, audio.size)
            audio[:ramp] *= np.linspace(0.0, 1.0, ramp, endpoint=False, dtype=np.float32)
            self._started = True
        keep = max(0, audio.size - self._fade_len)
        self._held = audio[keep:]
        return audio[:keep]

    def finish(self) -> np.ndarray:
        tail, self._held = self._held, np.zeros(0, dtype=np.float32)
        if tail.size:
            tail = tail * np.linspace(1.0, 0.0, tail.size, dtype=np.float32)
        return tail


def _to_host(wav: Any) -> np.ndarray:
    """The one copy per chunk: device tensor to a fresh float32 numpy array."""
    import torch

    with torch.inference_mode():
        # copy=True: on the CPU the model keeps a view of this tensor for the
        # next crossfade, so the fader must not write into it.
        return wav.to("cpu", copy=True).float().numpy().reshape(-1)


def _encode_conditioning(conditioning: Conditioning) -> dict[str, np.ndarray]:
    return {
        "gpt_cond_latent": conditioning.gpt_cond_latent.detach().float().cpu().numpy(),
        "speaker_embedding": conditioning.speaker_embedding.detach().float().cpu().numpy(),
    }


def _on_off(flag: bool) -> str:
    return "on" if flag else "off"
