"""Which chat model the settings ask for."""
from __future__ import annotations

from .base import ChatModel
from .settings import LlmSettings


def make_chat(settings: LlmSettings) -> ChatModel:
    backend = settings.backend
    if backend == "auto":
        backend = "openai" if settings.base_url else "embedded"
    if backend == "openai":
        from .openai_chat import OpenAIChat

        return OpenAIChat(settings)
    from .embedded import EmbeddedChat

    return EmbeddedChat(settings)
