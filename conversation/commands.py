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


def parse_command(text: str, personas: list[str], voices: list[str]) -> Command | None:
    """'Switch to storyteller.' -> Command('persona', 'storyteller'); None if not a command."""
    said = re.sub(r"[^\w' ]+", " ", text.lower()).strip()
    said = re.sub(r"\s+", " ", said)
    for pattern, kind, names in ((_VOICE, "voice", voices), (_SWITCH, "persona", personas)):
        match = pattern.match(said)
        if match:
            wanted = _key(match.group("name"))
            for name in names:
                if _key(name) == wanted:
                    return Command(kind, name)
    return None
