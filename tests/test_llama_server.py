"""The agent against a real llama.cpp server: `python -m llama_cpp.server` serving the bundled GGUF.

tests/test_openai_server.py checks the client against a hand-written SSE
server; here every part is real: the server (llama-cpp-python's, from the
test extra), the bundled SmolLM2, the agent's session with Whisper and Piper
loaded, and typed turns as `--text` sends them (tests/typed_agent.py). What
the server did is read from its own output (tests/llama_server.py), not
inferred from the client.
"""
from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from conftest import write_config
from conversation.config import load_config, with_llm
from conversation.responder import APOLOGY
from llama_server import DISCONNECTED, GENERATION_DONE, MODEL_ALIAS, REQUEST, LlamaServer
from llm.embedded import bundled_model_path
from typed_agent import typed_agent, until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

# At temperature 0 the bundled model answers this in a few words ...
QUESTION = "What is the capital of France?"
# ... and this with a story that runs to max_tokens: about 10 s of generation on 2 cores.
STORY = "Write a very long story about a dragon and a knight."
STORY_TOKENS = 1000
TURN_TIMEOUT_S = 90.0  # a turn takes seconds; the margin is for a machine busy with other work


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server():
    gguf = bundled_model_path()
    if not gguf.is_file():
        pytest.fail(f"the bundled GGUF is missing: {gguf}")
    with LlamaServer(gguf, free_port()) as running:
        yield running


def agent_config(tmp_path, server: LlamaServer, max_tokens: int = 60):
    """config.yaml as shipped, greedy, pointed at the server as `--llm URL --model NAME` does it."""
    path = write_config(tmp_path, **{"turn.greet": False, "turn.smart_turn": False,
                                     "personas.assistant.llm": {"temperature": 0.0, "max_tokens": max_tokens}})
    return with_llm(load_config(path), target=server.base_url, model=MODEL_ALIAS)


def run(scenario):
    return asyncio.run(asyncio.wait_for(scenario, timeout=200))


def test_a_typed_turn_is_answered_in_pieces_streamed_from_the_server(tmp_path, server):
    config = agent_config(tmp_path, server)
    mark = server.mark()

    async def scenario():
        async with typed_agent(config) as (agent, reporter, stream_log):
            await asyncio.wait_for(agent.on_text(QUESTION), TURN_TIMEOUT_S)
            return reporter, stream_log

    reporter, stream_log = run(scenario())
    assert any(MODEL_ALIAS in line and server.base_url in line for line in reporter.infos), reporter.infos
    (record,) = reporter.records
    assert record["error"] is None, record["error"]
    assert "Paris" in record["agent_text"]
    (reply,) = stream_log.replies
    assert len(reply.pieces) >= 3, reply.pieces  # a token at a time, not the reply in one piece
    assert reply.pieces[-1][0] > reply.pieces[0][0]  # spread over the generation
    assert " ".join(reply.text.split()) == record["agent_text"]  # every piece spoken, none lost
    assert reporter.spoken and not reporter.errors
    # The server's side: one streamed request, generated to its end.
    assert len(server.matching(REQUEST, mark)) == 1, server.output(since=mark)
    assert len(server.matching(GENERATION_DONE, mark)) == 1, server.output(since=mark)


def test_typing_over_a_reply_stops_the_servers_generation(tmp_path, server):
    """The cut reply's connection is closed, and the server stops generating for it.

    The server runs with --interrupt_requests False: a request keeps the model until its client
    hangs up or its generation ends, and only a generation that ends prints llama.cpp's timings.
    So the next turn being served, with the cut request's timings never printed, shows that the
    server stopped mid-reply because the agent hung up.
    """
    config = agent_config(tmp_path, server, max_tokens=STORY_TOKENS)
    mark = server.mark()

    async def scenario():
        async with typed_agent(config) as (agent, reporter, stream_log):
            story = agent.on_text(STORY)
            story_turn = agent.current
            await until(lambda: agent.player.playback(story_turn.id).started_at is not None, TURN_TIMEOUT_S,
                        "the story's first sound")  # cut while heard: a barge-in, not a dropped guess
            pieces_at_cut, cut_at = len(stream_log.replies[0].pieces), time.monotonic()
            await asyncio.wait_for(agent.on_text(QUESTION), TURN_TIMEOUT_S)  # cuts the story off
            await asyncio.wait_for(story, TURN_TIMEOUT_S)
            return reporter, stream_log, pieces_at_cut, cut_at

    reporter, stream_log, pieces_at_cut, cut_at = run(scenario())
    cut, answer = reporter.records
    assert cut["interrupted"] and cut["error"] is None
    assert answer["error"] is None and "Paris" in answer["agent_text"]
    assert pieces_at_cut < STORY_TOKENS // 2, "the story was read to its end before the cut"
    # The server's side.
    output = server.output(since=mark)
    assert len(server.matching(REQUEST, mark)) == 2, output
    hang_ups = server.matching(DISCONNECTED, mark)
    assert len(hang_ups) == 1, f"the server never saw the agent hang up on the story:\n{output}"
    assert hang_ups[0].at >= cut_at, output
    finished = server.matching(GENERATION_DONE, mark)
    assert len(finished) == 1, f"the story was generated to its end, not stopped:\n{output}"
    assert finished[0].at > hang_ups[0].at, output  # the answer's generation, once the story's had stopped
    assert int(GENERATION_DONE.search(finished[0].text).group(1)) < STORY_TOKENS // 2, output


def test_the_server_dying_mid_reply_is_apologised_for_and_a_restarted_one_answers(tmp_path, server):
    config = agent_config(tmp_path, server, max_tokens=STORY_TOKENS)

    async def scenario():
        async with typed_agent(config) as (agent, reporter, stream_log):
            story = agent.on_text(STORY)
            await until(lambda: stream_log.replies and stream_log.replies[0].pieces, TURN_TIMEOUT_S,
                        "the story's first piece")
            await asyncio.to_thread(server.kill)
            await asyncio.wait_for(story, TURN_TIMEOUT_S)
            died, restarted = list(reporter.records), server.mark()
            await asyncio.to_thread(server.start)  # the same port, as a supervisor would restart it
            await asyncio.wait_for(agent.on_text(QUESTION), TURN_TIMEOUT_S)
            return reporter, died, restarted

    reporter, died, restarted = run(scenario())
    (broken,) = died
    assert server.base_url in broken["error"] and "\n" not in broken["error"]
    assert broken["agent_text"].endswith(APOLOGY)  # what it had said stands, then the apology
    assert APOLOGY in reporter.spoken
    (error,) = reporter.errors  # one line for the person
    assert server.base_url in error and not error.startswith("turn ")  # "turn N failed: ..." is a crash
    again = reporter.records[1]
    assert again["error"] is None and "Paris" in again["agent_text"]
    assert len(server.matching(GENERATION_DONE, restarted)) == 1, server.output(since=restarted)


def test_the_first_token_benchmark_times_both_paths(tmp_path, server):
    from conversation.benchmarks.server_first_token import main

    out = tmp_path / "first_token.json"
    assert main(["--llm", server.base_url, "--model", MODEL_ALIAS, "--runs", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [len(result["times_ms"][name]) for name in ("embedded", "server")] == [2, 2]
    assert result["embedded"]["p50_ms"] > 0 and result["server"]["p50_ms"] > 0
