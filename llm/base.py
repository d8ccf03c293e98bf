"""The one interface every chat backend implements."""
from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, Protocol

Message = dict[str, str]  # {"role": ..., "content": ...}


class LlmError(Exception):
    """The model or server failed; the message is fit to show a person."""


@dataclass(frozen=True)
class Generation:
    temperature: float
    max_tokens: int
    model: str | None = None  # for servers that host several models
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    repeat_penalty: float = 1.0  # llama.cpp's own; servers ignore it
    seed: int | None = None  # llama.cpp's sampling seed, for runs that can be repeated; None: its own
    # Texts the reply must not begin with (a second try's refused openings): the local model never samples
    # their first token; a server, whose tokens are unknown, is asked in words.
    avoid_openings: tuple[str, ...] = ()


class CutShort(str):
    """The last piece a stream yields when the token limit, not the model, ended the reply (it is empty)."""


CUT_SHORT = CutShort()


class ChatModel(Protocol):
    def load(self) -> None: ...

    def describe(self) -> str:
        """Which model answers, in words for the person (said once at start)."""
        ...

    async def warm(self, messages: list[Message]) -> None:
        """Get ready for prompts that start with these messages (a local model caches them)."""
        ...

    def stream(self, messages: list[Message], generation: Generation) -> AsyncIterator[str]:
        """Yield text pieces as they are generated, then CUT_SHORT if max_tokens ended them.

        Closing the iterator stops generation.
        """
        ...

    async def aclose(self) -> None: ...
