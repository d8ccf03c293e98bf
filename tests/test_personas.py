"""Switching persona and voice while the agent runs, in file mode."""
from __future__ import annotations

import asyncio

import pytest
import yaml

from conftest import replay, spoken
from conversation.benchmarks.scenarios import build

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

FIRST = "lhotse_ES2011a.Headset-0-40s-46s.wav"
SECOND = "lhotse_common_voice_en_651325.mp3"


def edit_config_after_first_turn(change):
    """Edit the running agent's config as soon as its first turn is logged."""
    async def edit(path):
        log = path.parent / "turns.jsonl"
        while not (log.exists() and log.read_text().strip()):
            await asyncio.sleep(0.1)
        data = yaml.safe_load(path.read_text())
        text = change(data)
        path.write_text(text if isinstance(text, str) else yaml.safe_dump(data))
    return edit


def test_voice_command_switches_persona(tmp_path, speech_dir):
    scenario = build(tmp_path / "in.wav", [(speech_dir / FIRST, 0.0), (spoken("Switch to the storyteller."), 10.0),
                                           (speech_dir / SECOND, 15.0)])
    result = replay(scenario["path"], tmp_path)
    turns = result.turns
    assert [t["persona"] for t in turns] == ["assistant", "storyteller", "storyteller"], turns
    assert turns[1]["command"] == "persona:storyteller"
    assert [t["voice"] for t in turns] == ["joe", "joe_slow", "joe_slow"]
    assert turns[2]["agent_text"] and turns[2]["playback_start"] is not None


def test_config_edit_applies_from_the_next_turn(tmp_path, speech_dir):
    scenario = build(tmp_path / "in.wav", [(speech_dir / FIRST, 0.0), (speech_dir / SECOND, 12.0)])

    def use_fast_voice(data):
        data["personas"]["assistant"]["voice"] = "joe_fast"

    result = replay(scenario["path"], tmp_path, during=edit_config_after_first_turn(use_fast_voice))
    assert [t["voice"] for t in result.turns] == ["joe", "joe_fast"]
    assert any("config reloaded" in line for line in result.console)


def test_broken_config_edit_is_rejected_and_the_agent_goes_on(tmp_path, speech_dir):
    scenario = build(tmp_path / "in.wav", [(speech_dir / FIRST, 0.0), (speech_dir / SECOND, 12.0)])
    result = replay(scenario["path"], tmp_path,
                    during=edit_config_after_first_turn(lambda data: "vad: {frame_ms: 25}\n"))
    assert len(result.turns) == 2 and all(t["agent_text"] for t in result.turns)
    errors = [line for line in result.console if "config not reloaded" in line]
    assert errors and "\n" not in errors[0]
