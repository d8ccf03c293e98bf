"""First-token latency of a follow-up turn: the embedded llama.cpp model vs an OpenAI-compatible server.

    python -m conversation.benchmarks.server_first_token --llm URL [--model NAME] [--runs 15]
                                                         [--config config.yaml] [--out FILE.json]

Both answer the same follow-up through the agent's own LLM clients: the
persona's system prompt, a first question and the model's own reply to it,
then a second question, with the persona's settings at temperature 0. Each run
asks the first question again, so the model holds that exchange in its cache
as it does after a real turn, then times the follow-up from the request to its
first piece. Runs alternate between the two, so other work on the machine
slows both alike. With the server serving the GGUF the embedded backend loads,
on the same threads (`python -m llama_cpp.server --model FILE.gguf
--n_threads 1 --n_threads_batch 1`), the difference is what the server and
its HTTP stream add.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from contextlib import aclosing
from dataclasses import replace
from pathlib import Path

from llm.backends import make_chat
from llm.base import LlmError

from ..config import Config, ConfigError, load_config, with_llm
from ..dialogue import Dialogue
from .stats import percentile

FIRST = "What should I cook for dinner tonight?"
FOLLOW_UP = "How long does that take to make?"


async def _read(chat, messages, generation) -> tuple[float, str]:
    """(seconds to the first piece, the whole reply)."""
    started, first, reply = time.perf_counter(), None, ""
    async with aclosing(chat.stream(messages, generation)) as pieces:
        async for piece in pieces:
            first = first if first is not None else time.perf_counter() - started
            reply += piece
    return (first if first is not None else time.perf_counter() - started), reply


async def follow_up_ms(chat, config: Config) -> float:
    """One run: the first exchange, then the follow-up's first-token latency in ms."""
    dialogue = Dialogue(config)
    generation = replace(dialogue.generation(), temperature=0.0)
    language = dialogue.persona.language
    _, reply = await _read(chat, dialogue.prompt(FIRST, language), generation)
    dialogue.history.add_user(FIRST)
    dialogue.history.add_assistant(reply)
    first, _ = await _read(chat, dialogue.prompt(FOLLOW_UP, language), generation)
    return first * 1000


def summary(values: list[float]) -> dict:
    return {"p50_ms": round(percentile(values, 50), 1), "p10_ms": round(percentile(values, 10), 1),
            "p90_ms": round(percentile(values, 90), 1), "n": len(values)}


async def compare(config: Config, url: str, model: str | None, runs: int) -> dict:
    embedded = config.model_copy(update={"llm": config.llm.model_copy(update={"backend": "embedded"})})
    configs = {"embedded": embedded, "server": with_llm(config, url, model)}
    chats = {name: make_chat(each.llm) for name, each in configs.items()}
    for chat in chats.values():
        chat.load()
    times: dict[str, list[float]] = {name: [] for name in chats}
    try:
        for name, chat in chats.items():
            await follow_up_ms(chat, configs[name])  # warm-up, not counted: the server's first request
        for _ in range(runs):
            for name, chat in chats.items():
                times[name].append(await follow_up_ms(chat, configs[name]))
    finally:
        for chat in chats.values():
            await chat.aclose()
    overheads = [server - embedded for server, embedded in zip(times["server"], times["embedded"])]
    return {"url": url, "runs": runs, "embedded": summary(times["embedded"]), "server": summary(times["server"]),
            "overhead": summary(overheads),  # run by run: the server's time less the embedded model's
            "times_ms": {name: [round(t, 1) for t in ts] for name, ts in times.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conversation.benchmarks.server_first_token",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--llm", required=True, metavar="URL", help="the server, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--model", help="the model name sent to the server")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--out", metavar="FILE.json")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        result = asyncio.run(compare(config, args.llm, args.model, args.runs))
    except (ConfigError, LlmError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    for name in ("embedded", "server", "overhead"):
        row = result[name]
        print(f"{name:9s} p50 {row['p50_ms']:7.1f} ms   p10 {row['p10_ms']:7.1f}   p90 {row['p90_ms']:7.1f}   (n={row['n']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
