"""Editing config.yaml (or adding a voice) while the agent runs: one config for the whole session.

Fast: the agent on a virtual clock with fake models (agent_harness.py), the
real config watcher reading real files.
"""
from __future__ import annotations

import pytest
import yaml

from agent_harness import Say, Wait, converse, make_harness
from conversation.config import load_config
from conversation.reload import needs_restart, watch_config
from conftest import write_config

pytestmark = pytest.mark.fast


def edit(path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def watcher(h):
    """The session's watcher over the harness's config file."""
    return lambda agent: watch_config(h.log_path.parent / "config.yaml", lambda: agent.config, agent.apply_config,
                                      lambda: agent.idle, h.reporter)


def at(moment: float, action):
    """A `during` hook that runs `action` once, at the frame starting at `moment`."""
    def during(t: float) -> None:
        if abs(t - moment) < 1e-9:
            action()
    return during


def test_only_keys_the_session_was_built_with_need_a_restart(tmp_path):
    base = load_config(write_config(tmp_path))
    live = load_config(write_config(tmp_path, **{"turn.min_silence_ms": 300, "vad.hangover_ms": 900,
                                                 "personas.assistant.greeting": "Yo.", "llm.temperature": 0.9}))
    assert needs_restart(base, live) == []
    built = load_config(write_config(tmp_path, **{"vad.frame_ms": 30, "stt.model": "small.en",
                                                  "audio.output_device": "speakers"}))
    assert needs_restart(base, built) == ["audio", "stt", "vad.frame_ms"]


def test_a_frame_length_edit_is_refused_in_one_line_and_the_session_goes_on(tmp_path):
    h = make_harness(tmp_path, {1: "Hello there.", 2: "Still there?"}, "Hi.", "Yes.")
    config_path = tmp_path / "config.yaml"
    converse(h, Wait(0.5), Say(1, 1.0), Wait(2.5), Say(2, 1.0), Wait(0.5), beside=watcher(h),
             during=at(2.0, lambda: edit(config_path, lambda c: c["vad"].update(frame_ms=30))))
    assert [t["agent_text"] for t in h.turns] == ["Hi.", "Yes."]
    [refusal] = h.reporter.errors
    assert "vad.frame_ms" in refusal and "restart" in refusal and "\n" not in refusal
    assert h.agent.config.vad.frame_ms == 20 and h.agent.endpointer.frame_len == 320


def test_a_voice_added_while_running_can_be_switched_to(tmp_path):
    h = make_harness(tmp_path, {1: "Use the sam voice.", 2: "Say something."}, "Something.")
    sam = {"sam": {"backend": "piper", "model": "bundled", "language": "en", "noise_scale": 0.3}}
    converse(h, Wait(1.5), Say(1, 1.0), Wait(2.5), Say(2, 1.0), Wait(0.5), beside=watcher(h),
             during=at(0.2, lambda: (tmp_path / "voices.yaml").write_text(yaml.safe_dump(sam))))
    switch, reply = h.turns
    assert switch["command"] == "voice:sam" and switch["error"] is None
    assert reply["voice"] == "sam"
    assert h.synthesizer.requests[-1].voice.noise_scale == 0.3
    assert any(info.startswith("config reloaded") for info in h.reporter.infos)


def test_an_edited_voice_speaks_the_next_reply_with_its_new_settings(tmp_path):
    h = make_harness(tmp_path, {1: "Hello there.", 2: "And again."}, "Hi.", "Hi again.")
    config_path = tmp_path / "config.yaml"
    converse(h, Wait(0.5), Say(1, 1.0), Wait(2.5), Say(2, 1.0), Wait(0.5), beside=watcher(h),
             during=at(2.5, lambda: edit(config_path, lambda c: c["voices"]["joe"].update(volume=0.4))))
    first, second = (r for r in h.synthesizer.requests if r.text in ("Hi.", "Hi again."))
    assert first.voice.volume != 0.4 and second.voice.volume == 0.4


def test_smart_turn_switched_on_while_running_is_loaded_and_asked(tmp_path):
    h = make_harness(tmp_path, {1: "Hello there.", 2: "I would like to know the time."}, "Hi.", "Noon.", smart_turn=0.1,
                     **{"turn.smart_turn": False})
    config_path = tmp_path / "config.yaml"
    converse(h, Wait(0.5), Say(1, 1.0), Wait(2.5), Say(2, 1.0), Wait(0.5), beside=watcher(h),
             during=at(2.5, lambda: edit(config_path, lambda c: c["turn"].update(smart_turn=True))))
    first, second = h.turns
    assert first["voice_complete"] is None and first["committed"] - first["speech_end"] < 0.7
    assert h.smart_turn.loaded
    assert second["voice_complete"] == 0.1, "the newly loaded Smart Turn judged the second turn"
    assert second["committed"] - second["speech_end"] > 1.25, "and its veto held the turn open"


def test_a_removed_persona_falls_back_to_the_default(tmp_path):
    h = make_harness(tmp_path, {1: "Switch to the coach.", 2: "Motivate me."}, "Go!")
    config_path = tmp_path / "config.yaml"
    converse(h, Wait(0.5), Say(1, 1.2), Wait(2.5), Say(2, 1.0), Wait(0.5), beside=watcher(h),
             during=at(3.0, lambda: edit(config_path, lambda c: c["personas"].pop("coach"))))
    switch, reply = h.turns
    assert switch["persona"] == "coach" and reply["persona"] == "assistant"
    assert h.chat.requests[-1][0]["content"] == h.agent.config.personas["assistant"].system_prompt


def test_a_broken_edit_keeps_the_previous_settings(tmp_path):
    h = make_harness(tmp_path, {1: "Hello there."}, "Hi.")
    config_path = tmp_path / "config.yaml"
    converse(h, Wait(1.5), Say(1, 1.0), Wait(0.5), beside=watcher(h),
             during=at(0.2, lambda: config_path.write_text(config_path.read_text() + "\nturn: {earlyend: true}\n")))
    assert h.turns[0]["agent_text"] == "Hi."
    [error] = h.reporter.errors
    assert error.startswith("config not reloaded, keeping the previous settings") and "earlyend" in error


def test_the_command_lines_llm_survives_a_reload(tmp_path):
    from conversation.config import with_llm

    h = make_harness(tmp_path, {1: "Hello there."}, "Hi.")
    server = "http://127.0.0.1:9/v1"
    h.config = with_llm(h.config, server, "qwen2.5:3b")
    config_path = tmp_path / "config.yaml"
    converse(h, Wait(1.5), Say(1, 1.0), Wait(0.5),
             beside=lambda agent: watch_config(config_path, lambda: agent.config, agent.apply_config,
                                               lambda: agent.idle, h.reporter,
                                               adjust=lambda c: with_llm(c, server, "qwen2.5:3b")),
             during=at(0.2, lambda: edit(config_path, lambda c: c["turn"].update(min_silence_ms=400))))
    assert h.reporter.errors == [] and h.agent.config.turn.min_silence_ms == 400
    assert (h.agent.config.llm.base_url, h.agent.config.llm.model) == (server, "qwen2.5:3b")
    assert h.chat.requests and h.agent.dialogue.generation().model == "qwen2.5:3b"


def test_llm_on_the_command_line_is_a_server_or_a_gguf_file(tmp_path):
    from conversation.config import ConfigError, with_llm

    base = load_config(write_config(tmp_path))
    server = with_llm(base, "http://localhost:11434/v1", "qwen2.5:3b").llm
    assert (server.backend, server.base_url, server.model) == ("openai", "http://localhost:11434/v1", "qwen2.5:3b")
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    local = with_llm(base, str(gguf), None).llm
    assert (local.backend, local.model_path) == ("embedded", str(gguf.resolve()))
    with pytest.raises(ConfigError, match="--llm: .* neither a server URL"):
        with_llm(base, str(tmp_path / "missing.gguf"), None)
