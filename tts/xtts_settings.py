"""Typed settings for the XTTS v2 backend: the model (once) and each voice.

No torch here: config parsing must work on a Piper-only install.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The 17 languages XTTS v2 was trained on, spelled as its tokenizer expects.
XTTS_LANGUAGES: tuple[str, ...] = (
    "en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru",
    "nl", "cs", "ar", "zh-cn", "hu", "ko", "ja", "hi",
)  # fmt: skip


class UnsupportedLanguageError(ValueError):
    """A language XTTS v2 cannot speak."""


def normalize_language(code: str) -> str:
    """Map 'EN', 'en-US', 'zh' and 'zh_CN' to XTTS spellings, or raise."""
    lowered = code.strip().lower().replace("_", "-")
    if lowered in XTTS_LANGUAGES:
        return lowered
    base = lowered.split("-")[0]
    if base == "zh":
        return "zh-cn"
    if base in XTTS_LANGUAGES:
        return base
    supported = ", ".join(XTTS_LANGUAGES)
    raise UnsupportedLanguageError(f"XTTS cannot speak language {code!r}; supported: {supported}")


class XttsModelSettings(BaseModel):
    """How to load and run the one XTTS model (see docs/xtts.md)."""

    model_config = ConfigDict(extra="forbid")

    checkpoint_dir: Path
    device: Literal["auto", "cuda", "cpu"] = "auto"
    # FP16 only takes effect on CUDA; on the CPU everything stays float32.
    fp16_gpt: bool = True
    fp16_decoder: bool = True
    use_deepspeed: bool = False
    cache_dir: Path | None = Path("cache/xtts_voices")
    warmup: bool = True
    # Cap on generated audio tokens per sentence (~46 ms of audio each);
    # None keeps the checkpoint's own cap (about 600 tokens for XTTS v2).
    max_audio_tokens: int | None = Field(default=None, ge=1)
    # Fade at the start and end of each sentence so joins never click.
    sentence_fade_ms: float = Field(default=5.0, ge=0.0, le=50.0)


class XttsVoice(BaseModel):
    """One cloned voice: its reference clips and how to speak with it."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["xtts"] = "xtts"
    references: list[Path] = Field(min_length=1)
    language: str = "en"

    # Streaming: audio tokens per chunk; the first sentence of a reply uses
    # the smaller size so its first audio comes sooner.
    stream_chunk_size: int = Field(default=30, ge=1)
    first_stream_chunk_size: int = Field(default=8, ge=1)
    overlap_wav_len: int = Field(default=1024, ge=0)

    # Sampling of the GPT, passed straight to XTTS.
    temperature: float = Field(default=0.75, gt=0.0)
    top_k: int = Field(default=50, ge=1)
    top_p: float = Field(default=0.85, gt=0.0, le=1.0)
    repetition_penalty: float = Field(default=5.0, gt=0.0)
    length_penalty: float = 1.0
    speed: float = Field(default=1.0, gt=0.0)
    # Our chunker already splits sentences; XTTS splitting again adds latency.
    enable_text_splitting: bool = False

    # Conditioning: part of the voice cache key, so changing one recomputes.
    gpt_cond_len: int = Field(default=30, ge=1)
    gpt_cond_chunk_len: int = Field(default=4, ge=1)
    max_ref_length: int = Field(default=30, ge=1)
    sound_norm_refs: bool = False
    librosa_trim_db: float | None = None

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        return normalize_language(value)

    @model_validator(mode="after")
    def _chunk_within_cond(self) -> XttsVoice:
        if self.gpt_cond_chunk_len > self.gpt_cond_len:
            raise ValueError("gpt_cond_chunk_len must not exceed gpt_cond_len")
        return self

    def conditioning_settings(self) -> dict[str, object]:
        """The knobs that change the computed conditioning (cache key part)."""
        return {
            "gpt_cond_len": self.gpt_cond_len,
            "gpt_cond_chunk_len": self.gpt_cond_chunk_len,
            "max_ref_length": self.max_ref_length,
            "sound_norm_refs": self.sound_norm_refs,
            "librosa_trim_db": self.librosa_trim_db,
        }
