"""The conversation benchmark: prompts rebuilt from a turn log, and a short real conversation analysed."""
from __future__ import annotations

import json

import pytest

from conversation.benchmarks.conversation import main
from conversation.benchmarks.stage_budget import BUDGET_STAGES, prompts
from conversation.config import load_config
from conftest import ROOT

STATUSES = {"answered", "lost", "no reply before the next utterance"}


def record(turn: int, user: str, reply: str, persona: str = "assistant", **fields) -> dict:
    return {"turn": turn, "persona": persona, "voice": "joe", "user_text": user, "agent_text": reply,
            "heard_text": fields.pop("heard_text", reply), "interrupted": False, "reply_language": "en",
            "llm_first_token": 1.0, "command": None, "resumes": None, "error": None, **fields}


def test_prompts_are_rebuilt_as_the_agent_built_them_across_a_switch_and_a_cut():
    config = load_config(ROOT / "config.yaml")
    log = [record(1, "Hi there.", "Hello!"),
           record(2, "Switch to the storyteller.", "Switched to storyteller.", "storyteller",
                  command="persona:storyteller", llm_first_token=None),
           record(3, "Tell me a story.", "Once upon a time, a fox ran far away.", "storyteller",
                  heard_text="Once upon a time,", interrupted=True),
           record(4, "Make it short.", "A fox ran.", "storyteller")]
    built = prompts(config, log)
    assert built[1] is None, "a command has no prompt"
    first, story, short = built[0], built[2], built[3]
    assert first.history == [{"role": "system", "content": config.personas["assistant"].system_prompt}]
    assert first.messages[-1] == {"role": "user", "content": "Hi there."}
    assert story.history[0]["content"] == config.personas["storyteller"].system_prompt
    assert [m["content"] for m in story.history[1:]] == ["Hi there.", "Hello!", "Switch to the storyteller.",
                                                         "Switched to storyteller."]
    assert short.history[-2] == {"role": "assistant", "content": "Once upon a time,"}  # what was heard
    assert short.history[-1]["role"] == "system"  # the note that the reply was cut
    assert short.messages == short.history + [{"role": "user", "content": "Make it short."}]
    assert short.generation.max_tokens == config.personas["storyteller"].llm.max_tokens
    assert short.earlier_replies == ("Hello!", "Switched to storyteller.", "Once upon a time,")  # as the guard saw them


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_short_conversation_with_a_switch_and_a_cut_in_is_measured(tmp_path):
    assert main(["--short", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "conversation.json").read_text())
    run = report["runs"][0]
    utterances = run["utterances"]
    assert len(utterances) == 4 and sum(u["cut_in"] for u in utterances) == 1
    assert all(u["status"] in STATUSES for u in utterances) and not [u for u in utterances if u["status"] == "lost"]
    assert run["answered"] >= 3
    assert "persona:storyteller" in run["commands"]
    assert run["cut_in"]["placed"] and run["cut_in"]["reply_cut"]
    for key in ("v2v_audio_ms", "v2v_log_ms"):
        assert 0 < run[key]["p50"] <= run[key]["p90"] < 10_000
        assert report["summary"][key]["p50"]["median"] == run[key]["p50"]
    rows = report["summary"]["stage_budget"]
    assert [row["stage"] for row in rows] == [stage.name for stage in BUDGET_STAGES]
    assert all(row["pipeline_p50_ms"] > 0 and row["alone_p50_ms"] > 0 and row["ratio"] > 0 for row in rows)
    assert (tmp_path / "conversation.png").stat().st_size > 0
    assert "| STT |" in (tmp_path / "stage_budget.md").read_text()
