"""Settings shared by the TTS backends, and the voice union config.yaml uses."""
from __future__ import annotations

from typing import Annotated, Union

from pydantic import BaseModel, ConfigDict, Field

from .piper import PiperVoiceSettings
from .xtts_settings import XttsModelSettings, XttsVoice

# A voice's `backend` key picks its settings model.
VoiceSettings = Annotated[Union[PiperVoiceSettings, XttsVoice], Field(discriminator="backend")]


class TtsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    piper_threads: int = Field(2, ge=1, description="onnxruntime threads for Piper")
    xtts: XttsModelSettings | None = Field(None, description="the XTTS v2 model, needed by xtts voices")
    fallback_to_piper: bool = Field(True, description="use the bundled Piper voice when an XTTS voice cannot load")
