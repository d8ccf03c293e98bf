"""Spoken commands the agent handles itself, without the LLM."""
from __future__ import annotations

import re
from dataclasses import dataclass

_SWITCH = re.compile(r"^(?:please\s+)?(?:switch|change|talk)\s+to\s+(?:the\s+)?(?P<name>.+?)(?:\s+persona)?$")
# "voice" as Whisper hears it after a name: "Use the Joe boys." in one replay of "Use the joe voice.".
_VOICE = re.compile(r"^(?:please\s+)?(?:use|switch to|change to)\s+(?:the\s+)?(?P<name>.+?)\s+(?:voices?|boys)$")
# Long enough that one misheard sound leaves them unmistakable before "to": Whisper heard
# "Twitch to the Assistant." in three replays of one sitting.
_LONG_VERBS = ("switch", "change")


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


def _heard_verb(said: str) -> str:
    """'twitch to the assistant' -> 'switch to the assistant'; the name must still be one we know."""
    words = said.split(" ")
    at = 1 if words[0] == "please" else 0
    if len(words) > at + 1 and words[at + 1] == "to":
        for verb in _LONG_VERBS:
            if _edits(words[at], verb) == 1:
                words[at] = verb
    return " ".join(words)


def parse_command(text: str, personas: list[str], voices: list[str]) -> Command | None:
    """'Switch to storyteller.' -> Command('persona', 'storyteller'); None if not a command."""
    said = re.sub(r"[^\w' ]+", " ", text.lower()).strip()
    said = _heard_verb(re.sub(r"\s+", " ", said))
    for pattern, kind, names in ((_VOICE, "voice", voices), (_SWITCH, "persona", personas)):
        match = pattern.match(said)
        if match:
            name = _closest(_key(match.group("name")), names)
            if name is not None:
                return Command(kind, name)
    return None
