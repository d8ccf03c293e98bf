"""The conversation as the LLM sees it, within a bounded context."""
from __future__ import annotations

from dataclasses import dataclass, field

from .base import Message

INTERRUPTED_NOTE = "The user interrupted you; your last reply was cut off where it ends."


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
        """Record what the user heard; a cut-off reply is marked so the model knows.

        The mark is a note of its own rather than text inside the reply, which
        small models would otherwise repeat back.
        """
        self.turns.append({"role": "assistant", "content": text.strip()})
        if interrupted:
            self.turns.append({"role": "system", "content": INTERRUPTED_NOTE})

    def replace_last_assistant(self, text: str) -> None:
        """A false interruption: the cut reply was finished after all, so it stands whole."""
        if self.turns and self.turns[-1]["content"] == INTERRUPTED_NOTE:
            self.turns.pop()
        if self.turns and self.turns[-1]["role"] == "assistant":
            self.turns[-1]["content"] = text.strip()
        else:
            self.add_assistant(text)

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
