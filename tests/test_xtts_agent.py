"""XTTS behind the whole agent: a file-mode turn, `voices add`, and the Piper fallback."""
from __future__ import annotations

import asyncio

import pytest

from conftest import SPEECH, replay, spoken, write_config
from conversation.benchmarks.scenarios import build
from sse_server import ChatServer

pytest.importorskip("TTS", reason="the xtts extra is not installed")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

REFERENCE = SPEECH / "coqui-ai-TTS_LJ001-0002.wav"


def xtts_overrides(checkpoint, tmp_path) -> dict:
    return {
        "tts.xtts": {"checkpoint_dir": str(checkpoint), "cache_dir": str(tmp_path / "voices"),
                     "max_audio_tokens": 8, "warmup": True, "device": "cpu"},
        "voices.clone": {"backend": "xtts", "references": [str(REFERENCE)], "language": "en",
                         "first_stream_chunk_size": 4, "stream_chunk_size": 8,
                         "gpt_cond_len": 6, "gpt_cond_chunk_len": 6},
        "personas.assistant.voice": "clone",
        "personas.assistant.llm.max_tokens": 24,
    }


def test_agent_speaks_a_turn_with_xtts(tmp_path, xtts_checkpoint):
    result = replay(SPEECH / "lhotse_ES2011a.Headset-0-40s-46s.wav", tmp_path,
                    **xtts_overrides(xtts_checkpoint, tmp_path))
    assert len(result.turns) == 1
    turn = result.turns[0]
    assert turn["voice"] == "clone" and turn["agent_text"]
    assert turn["playback_start"] is not None and turn["tts_first_audio"] >= turn["first_chunk_ready"]
    assert result.output_rms(turn["playback_start"], turn["playback_start"] + 0.3) > 0  # random weights: noise


def test_the_persona_language_reaches_the_llm_and_xtts(tmp_path, xtts_checkpoint):
    with ChatServer(reply="Gerne! Was kann ich für Sie tun?") as llm:
        result = replay(SPEECH / "lhotse_ES2011a.Headset-0-40s-46s.wav", tmp_path,
                        **xtts_overrides(xtts_checkpoint, tmp_path),
                        **{"personas.assistant.language": "de", "llm.base_url": llm.base_url})
        requests = [r for r in llm.chat_requests() if r.messages[-1]["content"] == result.turns[0]["user_text"]]
    (turn,) = result.turns
    assert turn["reply_language"] == "de" and turn["agent_text"] == "Gerne! Was kann ich für Sie tun?"
    assert requests and requests[-1].messages[-2] == {"role": "system", "content": "Reply in German."}
    assert not [line for line in result.console if line.startswith("error:")]


def test_a_voice_that_cannot_speak_the_language_is_said_once(tmp_path, xtts_checkpoint):
    scenario = build(tmp_path / "in.wav", [(spoken("Use the joe voice."), 0.5)])
    result = replay(scenario["path"], tmp_path, **xtts_overrides(xtts_checkpoint, tmp_path),
                    **{"personas.assistant.language": "de"})
    (turn,) = result.turns
    assert turn["command"] == "voice:joe" and turn["voice"] == "joe", (turn, result.console)
    assert turn["reply_language"] == "en"  # said in a language joe speaks, not mangled German
    errors = [line for line in result.console if line.startswith("error:")]
    assert errors == ["error: the Piper voice 'joe' speaks English, not German; "
                      "add a Piper voice for de or use an XTTS voice"], result.console


def test_voices_add_then_a_second_start_hits_the_cache(tmp_path, xtts_checkpoint):
    from conversation.config import load_config
    from conversation.models import Models
    from conversation.app.voices import run as voices

    config_path = write_config(tmp_path, **{k: v for k, v in xtts_overrides(xtts_checkpoint, tmp_path).items()
                                            if k.startswith("tts.")})
    printed: list[str] = []
    assert voices(["--config", str(config_path), "add", "me", str(REFERENCE)], printed.append) == 0
    assert "computed" in printed[-1]
    assert (tmp_path / "voices.yaml").exists()

    async def start():
        config = load_config(config_path)
        models = Models.from_config(config)
        try:
            await models.ensure_voice("me", config.voices["me"])
            return models.synthesizers["xtts"].conditioning_computations
        finally:
            await models.aclose()

    assert asyncio.run(start()) == 0  # a restart recomputes nothing
    printed.clear()
    assert voices(["--config", str(config_path), "list"], printed.append) == 0
    assert any(line.startswith("me ") and "voices.yaml" in line for line in printed)
    assert voices(["--config", str(config_path), "remove", "me"], printed.append) == 0
    assert "me" not in load_config(config_path).voices


def test_missing_weights_fall_back_to_piper(tmp_path):
    overrides = xtts_overrides(tmp_path / "no-such-checkpoint", tmp_path)
    result = replay(SPEECH / "lhotse_ES2011a.Headset-0-40s-46s.wav", tmp_path, **overrides)
    assert len(result.turns) == 1 and result.turns[0]["agent_text"]
    notes = [line for line in result.console if "Piper" in line]
    assert notes and "Coqui Public Model License" in notes[0] and "\n" not in notes[0]
