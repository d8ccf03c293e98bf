"""The conversation as the LLM sees it, within a bounded context."""
from __future__ import annotations

from dataclasses import dataclass, field

from .base import Message

INTERRUPTED_MARK = " [interrupted]"


def estimate_tokens(text: str) -> int:
    return len(text) // 4 + 4  # close enough for English BPE, plus per-message overhead


@dataclass
class History:
    system_prompt: str
    context_tokens: int
    turns: list[Message] = field(default_factory=list)

    def add_user(self, text: str) -> None:
        self.turns.append({"role": "user", "content": text})

    def add_assistant(self, text: str, interrupted: bool = False) -> None:
        """Record what the user heard; a cut-off reply is marked so the model knows."""
        content = text.strip() + (INTERRUPTED_MARK if interrupted else "")
        self.turns.append({"role": "assistant", "content": content.strip()})

    def messages(self) -> list[Message]:
        """The system prompt plus as many recent turns as fit, oldest dropped first."""
        budget = self.context_tokens - estimate_tokens(self.system_prompt)
        kept: list[Message] = []
        for message in reversed(self.turns):
            budget -= estimate_tokens(message["content"])
            if budget < 0 and kept:
                break
            kept.append(message)
        kept.reverse()
        while kept and kept[0]["role"] != "user":
            kept.pop(0)  # a window must not open on an orphan reply
        return [{"role": "system", "content": self.system_prompt}, *kept]
