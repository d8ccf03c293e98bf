"""The one interface every speech-to-text backend implements."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0

    @property
    def is_speech(self) -> bool:
        return bool(self.text)


class Transcriber(Protocol):
    """16 kHz float32 mono audio of one utterance in, its words out.

    Not thread-safe: the caller drives one transcriber from one dedicated thread.
    """

    def load(self) -> None: ...

    def transcribe(self, audio: np.ndarray) -> Transcript: ...

    def close(self) -> None: ...
