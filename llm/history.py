"""The conversation as the LLM sees it, within a bounded context."""
from __future__ import annotations

from dataclasses import dataclass, field

from .base import Message

INTERRUPTED_NOTE = "The user interrupted you; your last reply was cut off where it ends."
# When the turns outgrow the budget, the oldest go at once until they fill only this share of it.
# Dropping one turn at a time would shift the prompt's start every turn, and a local model
# would read the whole prompt again each time instead of reusing the part it has evaluated.
KEEP_AFTER_TRIM = 0.5


def estimate_tokens(text: str) -> int:
    return len(text) // 4 + 4  # close enough for English BPE, plus per-message overhead


@dataclass
class History:
    system_prompt: str
    context_tokens: int
    turns: list[Message] = field(default_factory=list)
    trims: int = 0  # how often old turns were dropped: each time, the prompt's start changed

    def add_user(self, text: str) -> None:
        self.turns.append({"role": "user", "content": text})
        self._trim()

    def add_assistant(self, text: str, interrupted: bool = False) -> None:
        """Record what the user heard; a cut-off reply is marked so the model knows.

        The mark is a note of its own rather than text inside the reply, which
        small models would otherwise repeat back.
        """
        self.turns.append({"role": "assistant", "content": text.strip()})
        if interrupted:
            self.turns.append({"role": "system", "content": INTERRUPTED_NOTE})
        self._trim()

    def replace_last_assistant(self, text: str) -> None:
        """A false interruption: the cut reply was finished after all, so it stands whole."""
        if self.turns and self.turns[-1]["content"] == INTERRUPTED_NOTE:
            self.turns.pop()
        if self.turns and self.turns[-1]["role"] == "assistant":
            self.turns[-1]["content"] = text.strip()
        else:
            self.add_assistant(text)

    def messages(self) -> list[Message]:
        """The system prompt, then the turns kept (a window that opens on a user's turn)."""
        return [{"role": "system", "content": self.system_prompt}, *self.turns]

    @property
    def budget(self) -> int:
        return self.context_tokens - estimate_tokens(self.system_prompt)

    def _trim(self) -> None:
        if _tokens(self.turns) <= self.budget:
            return
        self.trims += 1
        keep = self.budget * KEEP_AFTER_TRIM
        while len(self.turns) > 1 and _tokens(self.turns) > keep:
            self.turns.pop(0)
        while len(self.turns) > 1 and self.turns[0]["role"] != "user":
            self.turns.pop(0)  # a window must not open on an orphan reply


def _tokens(messages: list[Message]) -> int:
    return sum(estimate_tokens(message["content"]) for message in messages)
