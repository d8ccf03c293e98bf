import pytest

from conversation.commands import Command, parse_command

PERSONAS = ["assistant", "storyteller", "coach"]
VOICES = ["joe", "joe_slow", "joe_fast"]


@pytest.mark.parametrize("said,command", [
    ("Switch to storyteller.", Command("persona", "storyteller")),
    ("Please switch to the coach persona!", Command("persona", "coach")),
    ("Use the Joe slow voice.", Command("voice", "joe_slow")),
    ("use the joe-fast voice", Command("voice", "joe_fast")),
    ("Use the job voice.", Command("voice", "joe")),  # Whisper mishearing a short name
    ("Use the Joe boys.", Command("voice", "joe")),  # ... or "voice" after it
    ("Use the Joe Slow voices.", Command("voice", "joe_slow")),
    ("Use the pirate boys.", None),  # no such voice
    ("Switch to the story teller.", Command("persona", "storyteller")),
    ("Switch to the storytellers.", Command("persona", "storyteller")),
    ("Change to a coat.", None),  # two sounds from "coach": too far
    ("Use the joe flow voice.", Command("voice", "joe_slow")),  # one sound from joe_slow, far from joe_fast
    ("Twitch to the Assistant.", Command("persona", "assistant")),  # a misheard verb
    ("Please stitch to the coach.", Command("persona", "coach")),
    ("Twitch to the pirate.", None),
    ("Swim to the coach.", None),  # too far from "switch"
    ("Switch to the pirate.", None),  # no such persona: an ordinary question
    ("Can you switch to storyteller mode later and tell me why?", None),
    ("I use the voice of reason.", None),
])
def test_parse_command(said, command):
    assert parse_command(said, PERSONAS, VOICES) == command
