"""Which transcriber the settings ask for."""
from __future__ import annotations

from .base import Transcriber
from .settings import SttSettings


def make_transcriber(settings: SttSettings) -> Transcriber:
    from .whisper import WhisperTranscriber  # faster-whisper is the one backend today

    return WhisperTranscriber(settings)
