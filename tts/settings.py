"""Settings shared by the TTS backends, and the voice union config.yaml uses."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .piper import PiperVoiceSettings

VoiceSettings = PiperVoiceSettings


class TtsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    piper_threads: int = Field(1, ge=1, description="onnxruntime threads for Piper")
    fallback_to_piper: bool = Field(True, description="use the bundled Piper voice when an XTTS voice cannot load")
