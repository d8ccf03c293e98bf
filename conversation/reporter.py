"""What the agent tells whoever shows the conversation: states, transcripts, replies, latency.

Only the interface lives in the core; the views that implement it (the
live view, the plain lines) are in conversation/app/.
"""
from __future__ import annotations

from typing import Protocol

from .turn import Turn


class Reporter(Protocol):
    def state(self, name: str) -> None: ...

    def user(self, turn: Turn) -> None: ...

    def agent(self, sentence: str) -> None: ...

    def turn_done(self, record: dict) -> None: ...

    def error(self, message: str) -> None: ...

    def info(self, message: str) -> None: ...
