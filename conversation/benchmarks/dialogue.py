"""A long typed conversation through the real LLM and history: does the agent stay sensible?

    python -m conversation.benchmarks.dialogue [--turns 60] [--seed 0] [--raw] [--lines FILE] [--config config.yaml]
                                               [--out FILE.json]

The user lines go through the same prompt, history, generation settings,
chunker and repeat guard as spoken turns, without audio, so a 60-turn
conversation takes a minute or two; `--raw` leaves the guard out, to see the
model alone. Each turn samples with its own seed, derived from `--seed`, so a
run can be repeated word for word. It reports replies that repeat an earlier
one (most of their own words shared, the question's aside), or would if cut off at some word,
replies that recite the system prompt,
replies that open with the same words as another (a stock opener), replies
that end without a full stop (the guard stopped them after a clause, or the
model ended so), what the guard did (second tries, dropped pieces, replies with
nothing new), the first token's and the first spoken piece's latency, and the
process's memory.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections import Counter
from contextlib import aclosing
from dataclasses import replace
from pathlib import Path

from llm.backends import make_chat
from llm.base import Generation

from ..chunker import Chunker
from ..config import ConfigError, load_config
from ..dialogue import Dialogue
from ..repeat_guard import RepeatGuard
from ..repeats import Said, cut_points, ends_a_sentence, is_nothing_new, opening, recites, words
from .stats import percentile

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


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


async def converse(config, turns: int, guarded: bool = True, seed: int = 0, lines: list[str] = USER_LINES) -> dict:
    chat = make_chat(config.llm)
    chat.load()
    dialogue = Dialogue(config)
    await chat.warm(dialogue.history.messages())
    records = []
    try:
        for index in range(turns):
            line = lines[index % len(lines)]
            # A seed per turn: a change to one reply leaves the next one's sampling as it was.
            generation = replace(dialogue.generation(), seed=seed * 1000 + index)
            record = await _reply(chat, dialogue, line, generation, guarded)
            reply = record["reply"]
            said = Said(r["reply"] for r in records)
            repeats = not record["nothing_new"] and said.repeated_by(reply, line)
            # A spoken reply may be cut off anywhere by the user's next words.
            repeats_if_cut = not record["nothing_new"] and any(
                said.repeated_by(heard, line) for heard in cut_points(reply, len(words(reply))))
            records.append({"turn": index + 1, "user": line, **record, "repeats": repeats,
                            "repeats_if_cut": repeats_if_cut,
                            "recites_prompt": recites(reply, dialogue.persona.system_prompt),
                            "rss_mb": round(rss_mb())})
            if not record["nothing_new"]:  # as the agent does: the model would copy that line
                dialogue.add_exchange(line, reply)
            await chat.warm(dialogue.history.messages())  # as the agent does, between turns
    finally:
        await chat.aclose()
    return {"turns": turns, "repeat_guard": guarded, "seed": seed, **summarize(records), "records": records}


async def _reply(chat, dialogue: Dialogue, line: str, generation: Generation, guarded: bool) -> dict:
    """One reply as the agent would speak it: cut into sentences, with or without the repeat guard."""
    messages = dialogue.prompt(line, dialogue.persona.language)
    settings = dialogue.config.chunker
    started, times = time.perf_counter(), {}

    async def timed(messages, generation):
        async with aclosing(chat.stream(messages, generation)) as pieces:
            async for piece in pieces:
                times.setdefault("first_token", time.perf_counter() - started)
                yield piece

    def new_chunker():
        return Chunker(settings.max_sentence_chars, settings.first_clause_words)

    guard = RepeatGuard.for_prompt(messages, dialogue.replies, dialogue.nothing_new())
    if guarded:
        sentences = guard.fresh_sentences(timed, messages, generation, new_chunker)
    else:
        sentences = _every_sentence(timed(messages, generation), new_chunker())
    spoken = []
    async for sentence in sentences:
        times.setdefault("first_sentence", time.perf_counter() - started)
        spoken.append(sentence)
    return {"reply": " ".join(spoken), "first_token_ms": round(times.get("first_token", 0) * 1000),
            "first_sentence_ms": round(times.get("first_sentence", 0) * 1000),
            "regenerated": guard.attempts > 1, "dropped": guard.dropped, "nothing_new": is_nothing_new(" ".join(spoken))}


async def _every_sentence(pieces, chunker: Chunker):
    async for piece in pieces:
        for sentence in chunker.feed(piece):
            yield sentence
    for sentence in chunker.flush():
        yield sentence


def summarize(records: list[dict]) -> dict:
    fifth = max(1, len(records) // 5)
    first_ms = [r["first_token_ms"] for r in records]
    sentence_ms = [r["first_sentence_ms"] for r in records]
    openings = Counter(" ".join(opening(r["reply"])) for r in records if not r["nothing_new"])
    common, count = openings.most_common(1)[0] if openings else ("", 0)
    return {
        "repeated_replies": sum(r["repeats"] for r in records),
        "repeated_if_cut": sum(r["repeats_if_cut"] for r in records),
        "recited_prompt": sum(r["recites_prompt"] for r in records),
        "unfinished": sum(bool(r["reply"]) and not ends_a_sentence(r["reply"]) for r in records),
        # A stock opener ("The answer to this question is that...") soon starts every reply.
        "shared_openings": sum(n - 1 for n in openings.values()),
        "most_common_opening": {"words": common, "replies": count},
        "regenerated": sum(r["regenerated"] for r in records),
        "dropped_sentences": sum(len(r["dropped"]) for r in records),
        "nothing_new": sum(r["nothing_new"] for r in records),
        "first_token_p50_ms": {"first_fifth": percentile(first_ms[:fifth], 50),
                               "last_fifth": percentile(first_ms[-fifth:], 50)},
        "first_sentence_p50_ms": {"all": percentile(sentence_ms, 50), "p90": percentile(sentence_ms, 90)},
        "rss_mb": {"first_fifth": max(r["rss_mb"] for r in records[:fifth]),
                   "last_fifth": max(r["rss_mb"] for r in records[-fifth:])},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conversation.benchmarks.dialogue", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--out", metavar="FILE.json", help="write every turn here")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (each turn derives its own from it)")
    parser.add_argument("--raw", action="store_true", help="speak every sentence the model gives (no repeat guard)")
    parser.add_argument("--lines", type=Path, help="the user's lines, one a line (default: 40 everyday questions)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        lines = [line.strip() for line in args.lines.read_text().splitlines() if line.strip()] if args.lines \
            else USER_LINES
    except (ConfigError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not lines:
        print(f"error: {args.lines} holds no lines", file=sys.stderr)
        return 2
    result = asyncio.run(converse(config, args.turns, guarded=not args.raw, seed=args.seed, lines=lines))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False))
    summary = {k: v for k, v in result.items() if k != "records"}
    print(json.dumps(summary))
    for record in result["records"]:
        flags = "".join(flag for flag, on in [("REPEAT ", record["repeats"]), ("RECITES ", record["recites_prompt"]),
                                              ("REGENERATED ", record["regenerated"])] if on)
        print(f"{record['turn']:3d} {record['first_token_ms']:5d} ms {flags}{record['reply'][:90]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
