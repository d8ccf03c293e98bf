"""The one streaming TTS interface every backend implements."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Iterator, Protocol

import numpy as np


@dataclass(frozen=True)
class SpeechRequest:
    """One speakable piece of text and how to say it.

    `first_in_reply` lets a backend trade efficiency for a faster first chunk
    (XTTS uses a smaller stream_chunk_size for the first sentence of a reply).
    `cancel` is checked between chunks; once set, the stream ends at once.
    """

    text: str
    voice: object  # the backend's own voice settings model
    language: str | None = None
    speed: float = 1.0
    first_in_reply: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)


class Synthesizer(Protocol):
    """Text in, float32 mono chunks in [-1, 1] at `sample_rate` out.

    Constructors are cheap; `load()` loads the model and `prepare_voice()`
    readies one voice (its model file, its cached conditioning) before its
    first sentence. Not thread-safe: the caller drives one synthesizer from
    one dedicated thread.
    """

    sample_rate: int

    def load(self) -> None: ...

    def prepare_voice(self, voice: object) -> None: ...

    def stream(self, request: SpeechRequest) -> Iterator[np.ndarray]: ...

    def release_memory(self) -> None:
        """Between replies: give back working memory the last reply grew."""

    def close(self) -> None: ...
