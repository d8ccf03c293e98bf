"""Spoken commands the agent handles itself, without the LLM."""
from __future__ import annotations

import re
from dataclasses import dataclass

_SWITCH = re.compile(r"^(?:please\s+)?(?:switch|change|talk)\s+to\s+(?:the\s+)?(?P<name>.+?)(?:\s+persona)?$")
_VOICE = re.compile(r"^(?:please\s+)?(?:use|switch to|change to)\s+(?:the\s+)?(?P<name>.+?)\s+voice$")


@dataclass(frozen=True)
class Command:
    kind: str  # "persona" or "voice"
    name: str


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _edits(a: str, b: str) -> int:
    """Levenshtein distance: Whisper often mishears one sound of a short name ('job' for 'joe')."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def _closest(wanted: str, names: list[str]) -> str | None:
    """The name said, or the only one within a misheard sound or two of it (one per five letters)."""
    for name in names:
        if _key(name) == wanted:
            return name
    near = [name for name in names if _edits(_key(name), wanted) <= max(1, len(_key(name)) // 5)]
    return near[0] if len(near) == 1 else None


def parse_command(text: str, personas: list[str], voices: list[str]) -> Command | None:
    """'Switch to storyteller.' -> Command('persona', 'storyteller'); None if not a command."""
    said = re.sub(r"[^\w' ]+", " ", text.lower()).strip()
    said = re.sub(r"\s+", " ", said)
    for pattern, kind, names in ((_VOICE, "voice", voices), (_SWITCH, "persona", personas)):
        match = pattern.match(said)
        if match:
            name = _closest(_key(match.group("name")), names)
            if name is not None:
                return Command(kind, name)
    return None
