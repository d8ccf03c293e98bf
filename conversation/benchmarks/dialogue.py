"""A long typed conversation through the real LLM and history: does the agent stay sensible?

    python -m conversation.benchmarks.dialogue [--turns 60] [--config config.yaml] [--out FILE.json]

The user lines go through the same prompt, history and generation settings as
spoken turns (Dialogue), without audio, so a 60-turn conversation takes a
minute or two. It reports replies that repeat an earlier one (most of their
words shared), replies that recite the system prompt, the first token's
latency over the conversation, and the process's memory.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import sys
import time
from pathlib import Path

from llm.backends import make_chat

from ..config import ConfigError, load_config
from ..dialogue import Dialogue
from .stats import percentile

NEAR_DUPLICATE = 0.7  # share of a reply's words found in an earlier reply
RECITED_WORDS = 6  # this many consecutive words of the system prompt

USER_LINES = [
    "What should I cook for dinner tonight?", "How far away is the moon?", "Tell me a fun fact.",
    "Why is the sky blue?", "Can you recommend a good book?", "What's the capital of Australia?",
    "How do I boil an egg?", "I had a long day at work.", "What's a good way to fall asleep?",
    "Who painted the Mona Lisa?", "How many legs does a spider have?", "What is photosynthesis?",
    "Give me a tip for learning French.", "What's the weather like on Mars?", "I'm thinking of getting a dog.",
    "How do airplanes stay in the air?", "What's your favourite season?", "Tell me a joke.",
    "How long should I run each day?", "What is the speed of light?", "Why do cats purr?",
    "Suggest a name for my plant.", "What's the tallest mountain in the world?", "How do I make coffee?",
    "What happened in 1969?", "Can you help me plan a picnic?", "What rhymes with orange?",
    "How do bees make honey?", "What's a healthy breakfast?", "Why do leaves change colour?",
    "How many people live in Tokyo?", "What is a black hole?", "Thanks, that was helpful.",
    "What should I do this weekend?", "How do I stop procrastinating?", "What is the biggest ocean?",
    "Tell me something about penguins.", "How do rainbows form?", "What's a good stretch for my back?",
    "Okay, goodbye for now.",
]


def words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def shared_share(reply: str, earlier: str) -> float:
    mine, theirs = words(reply), set(words(earlier))
    return sum(1 for w in mine if w in theirs) / len(mine) if mine else 0.0


def recites(reply: str, system_prompt: str, run: int = RECITED_WORDS) -> bool:
    said, prompt = words(reply), " ".join(words(system_prompt))
    return any(" ".join(said[i:i + run]) in prompt for i in range(len(said) - run + 1))


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


async def converse(config, turns: int) -> dict:
    chat = make_chat(config.llm)
    chat.load()
    dialogue = Dialogue(config)
    await chat.warm(dialogue.history.messages())
    records = []
    try:
        for index in range(turns):
            line = USER_LINES[index % len(USER_LINES)]
            started, first, reply = time.perf_counter(), None, ""
            async for piece in chat.stream(dialogue.prompt(line, dialogue.persona.language), dialogue.generation()):
                first = first if first is not None else time.perf_counter() - started
                reply += piece
            reply = reply.strip()
            repeat = max((shared_share(reply, r["reply"]) for r in records), default=0.0)
            records.append({"turn": index + 1, "user": line, "reply": reply,
                            "first_token_ms": round((first or 0) * 1000), "repeats": repeat >= NEAR_DUPLICATE,
                            "recites_prompt": recites(reply, dialogue.persona.system_prompt), "rss_mb": round(rss_mb())})
            trims = dialogue.history.trims
            dialogue.history.add_user(line)
            dialogue.history.add_assistant(reply)
            if dialogue.history.trims != trims:  # as the agent does, between turns
                await chat.warm(dialogue.history.messages())
    finally:
        await chat.aclose()
    fifth = max(1, turns // 5)
    first_ms = [r["first_token_ms"] for r in records]
    return {
        "turns": turns,
        "repeated_replies": sum(r["repeats"] for r in records),
        "recited_prompt": sum(r["recites_prompt"] for r in records),
        "first_token_p50_ms": {"first_fifth": percentile(first_ms[:fifth], 50),
                               "last_fifth": percentile(first_ms[-fifth:], 50)},
        "rss_mb": {"first_fifth": max(r["rss_mb"] for r in records[:fifth]),
                   "last_fifth": max(r["rss_mb"] for r in records[-fifth:])},
        "records": records,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conversation.benchmarks.dialogue", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--out", metavar="FILE.json", help="write every turn here")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result = asyncio.run(converse(config, args.turns))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False))
    summary = {k: v for k, v in result.items() if k != "records"}
    print(json.dumps(summary))
    for record in result["records"]:
        flags = ("REPEAT " if record["repeats"] else "") + ("RECITES " if record["recites_prompt"] else "")
        print(f"{record['turn']:3d} {record['first_token_ms']:5d} ms {flags}{record['reply'][:90]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
