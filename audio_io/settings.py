"""Settings of the audio front end: devices, playback buffer and endpointing."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AudioSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_device: str | int | None = Field(None, description="name (substring) or index; null = system default")
    output_device: str | int | None = None
    sample_rate: int | None = Field(None, description="device rate; null = the device's own default")
    block_ms: float = Field(20.0, gt=0, le=200, description="audio callback block (the seed's 512-sample chunk)")
    prebuffer_ms: float = Field(0.0, ge=0, le=2000, description="jitter buffer held before a reply starts playing")
    latency_ms: float = Field(100.0, gt=0, le=1000, description="device latency asked of PortAudio; lower stalls on busy machines")


class VadSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    aggressiveness: int = Field(3, ge=0, le=3)
    frame_ms: Literal[10, 20, 30] = 20
    pre_roll_ms: float = Field(300.0, ge=0, description="audio kept from before the onset, so no syllable is cut")
    onset_ms: float = Field(60.0, ge=0, description="voiced audio needed to call an onset")
    min_speech_ms: float = Field(250.0, ge=0, description="shorter utterances are dropped as noise")
    pause_ms: float = Field(60.0, gt=0, description="silence after which a reply is prepared, speculatively")
    hangover_ms: float = Field(1300.0, gt=0, description="silence that always ends the user's turn")
    energy_floor_dbfs: float = Field(-55.0, description="frames quieter than this are never speech")
