"""The OpenAI-compatible backend against a real HTTP server on localhost.

tests/sse_server.py streams Server-Sent Events in OpenAI's chunk format
(and can fail mid-stream, answer 500, or hang). These tests drive
llm.openai_chat.OpenAIChat against it directly, then the whole agent
(`python main.py --input ...`) with its LLM pointed at it.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conversation.config import load_config
from conversation.models import make_chat
from llm.base import CUT_SHORT, CutShort, Generation, LlmError
from llm.openai_chat import OpenAIChat
from llm.settings import LlmSettings
from sse_server import REPLY, ChatServer, pieces_of

REPO = Path(__file__).resolve().parents[1]
SPEECH = Path(__file__).resolve().parents[2] / "shared" / "speech"
CLIP = SPEECH / "lhotse_ES2011a.Headset-0-40s-46s.wav"  # "I'm Abigail ... You can call me Abi." (6 s)
APOLOGY = "Sorry, I can't think right now."
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What's the weather like?"}]

pytestmark = pytest.mark.timeout(120)


def settings(server: ChatServer | None = None, **overrides) -> LlmSettings:
    values = {"backend": "openai", "base_url": server.base_url if server else None, "api_key": "sk-test",
              "model": "test-model", "timeout_s": 5.0}
    return LlmSettings(**{**values, **overrides})


async def stream_with(llm: LlmSettings, generation=Generation(temperature=0.3, max_tokens=42)):
    """Load a chat for `llm`, stream one reply; return (pieces, the LlmError or None)."""
    chat = make_chat(llm)
    chat.load()
    pieces: list[str] = []
    try:
        async for piece in chat.stream(MESSAGES, generation):
            pieces.append(piece)
    except LlmError as error:
        return pieces, error
    finally:
        await chat.aclose()
    return pieces, None


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the client on its own ---------------------------------------------------
def test_streams_the_pieces_in_order_and_sends_the_request():
    with ChatServer(delay_s=0.01) as server:
        pieces, error = asyncio.run(stream_with(settings(server), Generation(temperature=0.3, max_tokens=42)))
        (request,) = server.wait_for_requests(1)
        assert request.done.wait(5)
    assert error is None
    assert pieces == pieces_of(REPLY)  # every piece, in order, none merged or lost
    assert "".join(pieces) == REPLY
    body = request.body
    assert request.path == "/v1/chat/completions"
    assert body["stream"] is True
    assert body["messages"] == MESSAGES
    assert body["model"] == "test-model"
    assert body["temperature"] == pytest.approx(0.3)
    assert body["max_tokens"] == 42
    assert "seed" not in body, "no seed unless one is set"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.completed and not request.client_closed


def test_a_reply_the_token_limit_ended_says_so_last():
    with ChatServer(delay_s=0, finish="length") as server:
        pieces, error = asyncio.run(stream_with(settings(server), Generation(temperature=0.3, max_tokens=5)))
    assert error is None and pieces == [*pieces_of(REPLY), CUT_SHORT] and isinstance(pieces[-1], CutShort)
    with ChatServer(delay_s=0) as server:
        pieces, error = asyncio.run(stream_with(settings(server), Generation(temperature=0.3, max_tokens=5)))
    assert not any(isinstance(piece, CutShort) for piece in pieces), "the model ended it itself"


def test_generation_model_overrides_the_configured_one():
    with ChatServer(delay_s=0) as server:
        pieces, error = asyncio.run(stream_with(settings(server), Generation(0.0, 5, model="persona-model")))
        (request,) = server.wait_for_requests(1)
    assert error is None and "".join(pieces) == REPLY
    assert request.body["model"] == "persona-model"
    assert request.body["temperature"] == 0.0


def test_openings_to_avoid_are_asked_for_in_words_just_before_the_users():
    """A server's tokens are unknown: a second try's refused opening cannot be banned, only named."""
    avoid = ("The answer to this question is that", "Sure!")
    with ChatServer(delay_s=0) as server:
        pieces, error = asyncio.run(stream_with(settings(server), Generation(0.9, 5, avoid_openings=avoid)))
        (request,) = server.wait_for_requests(1)
    assert error is None and "".join(pieces) == REPLY
    *before, line, asked = request.body["messages"]
    assert before == MESSAGES[:-1] and asked == MESSAGES[-1] and line["role"] == "system"
    assert '"The answer to this" or "Sure!"' in line["content"]


def test_a_seed_is_sent_when_set():
    with ChatServer(delay_s=0) as server:
        pieces, error = asyncio.run(stream_with(settings(server), Generation(0.5, 5, seed=7)))
        (request,) = server.wait_for_requests(1)
    assert error is None and request.body["seed"] == 7


def test_closing_the_stream_early_hangs_up_on_the_server():
    """A cancelled reply (barge-in) must stop the server's generation, not just stop reading."""
    long_reply = " ".join(["This is a long reply that goes on and on."] * 20)
    with ChatServer(reply=long_reply, delay_s=0.02) as server:
        chat = OpenAIChat(settings(server))
        chat.load()

        async def read_two_then_close():
            got = []
            stream = chat.stream(MESSAGES, Generation(0.5, 400))
            async for piece in stream:
                got.append(piece)
                if len(got) == 2:
                    break
            await stream.aclose()
            await chat.aclose()
            return got

        got = asyncio.run(read_two_then_close())
        (request,) = server.wait_for_requests(1)
        assert request.done.wait(10), "the server never noticed the client had gone"
    assert got == pieces_of(long_reply)[:2]
    assert request.client_closed and not request.completed
    assert request.pieces_sent < len(pieces_of(long_reply)) // 2


# --- where the server comes from: config.yaml and the environment ---------------
def write_config(tmp_path: Path, **llm) -> Path:
    data = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    data["llm"].update(llm)
    data["log"] = {"app": str(tmp_path / "agent.log"), "turns": str(tmp_path / "turns.jsonl")}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_base_url_and_key_from_config(tmp_path):
    with ChatServer(delay_s=0) as server:
        path = write_config(tmp_path, base_url=server.base_url, api_key="sk-from-config", model="cfg-model")
        config = load_config(path, env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "sk-env"})
        assert config.llm.base_url == server.base_url  # the config wins over the environment
        assert config.llm.api_key == "sk-from-config"
        chat = make_chat(config.llm)  # backend: auto + a base_url -> the OpenAI-compatible client
        assert isinstance(chat, OpenAIChat)
        pieces, error = asyncio.run(stream_with(config.llm))
        (request,) = server.wait_for_requests(1)
    assert error is None and "".join(pieces) == REPLY
    assert request.headers["authorization"] == "Bearer sk-from-config"
    assert request.body["model"] == "cfg-model"


def test_base_url_and_key_from_the_environment(tmp_path):
    with ChatServer(delay_s=0) as server:
        path = write_config(tmp_path, base_url=None, api_key=None)
        config = load_config(path, env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-from-env"})
        assert config.llm.base_url == server.base_url
        assert config.llm.api_key == "sk-from-env"
        assert isinstance(make_chat(config.llm), OpenAIChat)
        pieces, error = asyncio.run(stream_with(config.llm))
        (request,) = server.wait_for_requests(1)
    assert error is None and "".join(pieces) == REPLY
    assert request.headers["authorization"] == "Bearer sk-from-env"


def test_no_base_url_anywhere_means_the_embedded_model(tmp_path):
    config = load_config(write_config(tmp_path, base_url=None, api_key=None), env={})
    assert config.llm.base_url is None
    assert not isinstance(make_chat(config.llm), OpenAIChat)


# --- failures: one clear line, never a traceback --------------------------------
def test_a_server_that_is_down_is_a_one_line_error_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}/v1"
    started = time.monotonic()
    pieces, error = asyncio.run(stream_with(settings(base_url=url)))
    assert pieces == []
    assert isinstance(error, LlmError)
    message = str(error)
    assert url in message and "\n" not in message
    assert "unreachable" in message
    assert time.monotonic() - started < 5  # a refused connection is not a timeout


def test_http_500_is_a_one_line_error_with_the_status():
    with ChatServer(mode="error") as server:
        pieces, error = asyncio.run(stream_with(settings(server)))
        server.wait_for_requests(1)
    assert pieces == []
    assert isinstance(error, LlmError)
    message = str(error)
    assert server.base_url in message and "500" in message and "\n" not in message
    assert "the model crashed" in message  # the server's own reason is passed on


def test_a_dropped_connection_mid_stream_raises_after_the_first_pieces():
    with ChatServer(mode="fail", fail_after=4) as server:
        pieces, error = asyncio.run(stream_with(settings(server)))
        server.wait_for_requests(1)
    assert pieces == pieces_of(REPLY)[:4]  # what arrived was passed on before the failure
    assert isinstance(error, LlmError)
    assert server.base_url in str(error) and "mid-reply" in str(error) and "\n" not in str(error)


def test_a_hung_server_times_out():
    with ChatServer(mode="hang") as server:
        started = time.monotonic()
        pieces, error = asyncio.run(stream_with(settings(server, timeout_s=1.0)))
        elapsed = time.monotonic() - started
        server.wait_for_requests(1)
    assert pieces == [] and isinstance(error, LlmError)
    assert server.base_url in str(error) and "\n" not in str(error)
    assert 0.9 <= elapsed < 10


def test_a_server_that_stalls_mid_stream_times_out():
    with ChatServer(mode="stall", fail_after=3) as server:
        started = time.monotonic()
        pieces, error = asyncio.run(stream_with(settings(server, timeout_s=1.0)))
        elapsed = time.monotonic() - started
    assert pieces == pieces_of(REPLY)[:3]
    assert isinstance(error, LlmError) and server.base_url in str(error) and "\n" not in str(error)
    assert 0.9 <= elapsed < 10


# --- the whole agent, replaying a recording, with its LLM on the server ----------
def run_agent(tmp_path: Path, config: Path, env_extra: dict[str, str] | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(env_extra or {})
    out, log = tmp_path / "out.wav", tmp_path / "log.jsonl"
    done = subprocess.run([sys.executable, "main.py", "--input", str(CLIP), "--output", str(out), "--log", str(log),
                           "--config", str(config)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=100, stdin=subprocess.DEVNULL)
    turns = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    return done, turns, out


def spoken_seconds(path: Path) -> float:
    """Seconds of the agent's output file that are clearly not silence."""
    import numpy as np

    from audio_io.files import read_audio

    audio, rate = read_audio(str(path))
    block = rate // 50
    frames = audio[: len(audio) // block * block].reshape(-1, block)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return float(np.sum(rms > 0.01) / 50)


@pytest.fixture(scope="module")
def clip():
    if not CLIP.is_file():
        pytest.fail(f"speech clip missing: expected {CLIP} (the shared/ folder beside the repo)")
    return CLIP


@pytest.mark.slow
def test_the_agent_speaks_the_servers_reply(tmp_path, clip):
    """OPENAI_BASE_URL and OPENAI_API_KEY alone switch the agent to the server (llm.backend: auto)."""
    with ChatServer(delay_s=0.01) as server:
        config = write_config(tmp_path, base_url=None, api_key=None)
        done, turns, out = run_agent(tmp_path, config, {"OPENAI_BASE_URL": server.base_url,
                                                        "OPENAI_API_KEY": "sk-agent"})
        requests = server.chat_requests()
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert len(turns) == 1, done.stdout
    (turn,) = turns
    assert turn["error"] is None
    assert turn["user_text"].strip()
    assert turn["agent_text"] == REPLY
    assert turn["heard_text"] == REPLY
    assert f"agent: {pieces_of(REPLY)[0]}" in done.stdout
    # Replies start speculatively at pauses, so earlier requests may have been dropped unheard.
    assert requests
    request = requests[-1]
    assert request.headers["authorization"] == "Bearer sk-agent"
    body = request.body
    assert body["stream"] is True
    assert body["model"] == "gpt-4o-mini"
    assert body["temperature"] == pytest.approx(0.5)  # the assistant persona's settings
    assert body["max_tokens"] == 60
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][-1] == {"role": "user", "content": turn["user_text"]}
    assert request.completed
    assert spoken_seconds(out) > 2.0  # three sentences, spoken


@pytest.mark.slow
def test_the_agent_apologises_and_goes_on_when_the_server_fails_mid_reply(tmp_path, clip):
    first_sentence = "Sure, I can help you with that right away."
    fail_after = len(pieces_of(first_sentence)) + 2  # the first sentence is out, then the line drops
    with ChatServer(mode="fail", fail_after=fail_after) as server:
        config = write_config(tmp_path, base_url=server.base_url)
        done, turns, out = run_agent(tmp_path, config)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    assert len(turns) == 1, done.stdout
    (turn,) = turns
    assert server.base_url in turn["error"]
    assert turn["agent_text"].startswith(first_sentence)  # what it had said stands
    assert APOLOGY in turn["agent_text"]  # then the apology, spoken
    assert f"agent: {APOLOGY}" in done.stdout
    assert "error:" in done.stdout and server.base_url in done.stdout
    assert spoken_seconds(out) > 2.0
    assert "agent output written to" in done.stdout
