"""How the end-of-turn decision does on every clip: how often it ends a turn early, and whether it splits one.

    python -m conversation.benchmarks.end_of_turn [--min-silence-ms 250,500] [--out FILE.json] [CLIP ...]

Each speaking clip is replayed through the whole agent: once ending turns
only after the long hang-over (`turn.early_end: false`), which gives the
turns the speaker really took, then with the early end at each
`turn.min_silence_ms` given (default: as configured). A clip split into more
turns than the hang-over gives is a speaker cut off; a turn committed well
before the hang-over is an early end.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from ..config import ConfigError, load_config
from ..session import SessionOptions, run_file
from ..turn_log import read_turns
from .replay import DEFAULT_CLIPS, BenchmarkError, StateClock, find_clips
from .stats import percentile

NO_SPEECH = ("synthetic_", "derived_")  # clips without a word in them


def turns_for(config, clip: Path) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "turns.jsonl"
        options = SessionOptions(log_path=str(log))
        asyncio.run(run_file(config, str(clip), str(Path(tmp) / "out.wav"), options, StateClock()))
        return read_turns(log) if log.exists() else []


def with_turn(config, **changes):
    return config.model_copy(update={"turn": config.turn.model_copy(update=changes)})


def judge(clip: Path, config, taken: list[dict]) -> dict:
    decided = turns_for(config, clip)
    hangover_ms = config.vad.hangover_ms
    waits = [round((t["committed"] - t["speech_end"]) * 1000) for t in decided if t["committed"] is not None]
    return {
        "clip": clip.name, "min_silence_ms": config.turn.min_silence_ms, "turns_taken": len(taken),
        "turns": len(decided), "split": max(0, len(decided) - len(taken)),
        "early_ends": sum(w < hangover_ms - 100 for w in waits),
        "commit_wait_ms": waits, "texts": [t["user_text"] for t in decided],
    }


def summarize(rows: list[dict]) -> dict:
    waits = [w for row in rows for w in row["commit_wait_ms"]]
    return {"clips": len(rows), "split_clips": sum(r["split"] > 0 for r in rows),
            "turns": sum(r["turns"] for r in rows), "early_ends": sum(r["early_ends"] for r in rows),
            "commit_wait_p50_ms": percentile(waits, 50), "commit_wait_p90_ms": percentile(waits, 90)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The end-of-turn decision on every clip.")
    parser.add_argument("clips", nargs="*", help=f"audio files or folders (default: {DEFAULT_CLIPS})")
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--min-silence-ms", help="comma-separated turn.min_silence_ms values to compare")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        settings = [float(v) for v in args.min_silence_ms.split(",")] if args.min_silence_ms else \
            [config.turn.min_silence_ms]
    except ValueError:
        print(f"error: --min-silence-ms expects milliseconds like 250,500; got {args.min_silence_ms!r}",
              file=sys.stderr)
        return 2
    try:
        clips = [c for c in find_clips(args.clips or None) if not c.name.startswith(NO_SPEECH)]
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows: dict[float, list[dict]] = {ms: [] for ms in settings}
    for clip in clips:
        taken = turns_for(with_turn(config, early_end=False), clip)
        for ms in settings:
            row = judge(clip, with_turn(config, min_silence_ms=ms), taken)
            rows[ms].append(row)
            print(f"{row['clip']:<42} min silence {ms:g} ms: turns {row['turns']} (hang-over alone "
                  f"{row['turns_taken']}), split {row['split']}, early {row['early_ends']}, "
                  f"commit wait {row['commit_wait_ms']} ms", flush=True)
    summaries = {f"{ms:g}": summarize(found) for ms, found in rows.items()}
    print(json.dumps(summaries, indent=2))
    if args.out:
        args.out.write_text(json.dumps({"summary": summaries, "clips": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
