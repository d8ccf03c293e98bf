"""Barge-in benchmark: interruptions, backchannels and echo, replayed in real time.

    python -m conversation.benchmarks.bargein [--out DIR] [--quick] [--sections first_reply,...]

Each conversation is built from real clips: the user says something, the agent
answers, and (in the interruption cases) the user speaks again while the
agent is talking. It runs without echo and with `--simulate-echo` across
delays and gains, then reports the stop time (user onset to silent output,
from OUT.wav), the share of interruptions detected, false barge-ins over
uninterrupted replies, and whether short noises left replies whole.

First, the session's first reply (no greeting, nothing heard yet but the echo
probe) is interrupted 0.3, 1, 2 and 4 s in, without echo and with 30/80/150 ms
at -20/-10/-6 dB; a table shows, per cell, whether the reply was cut, the stop
time, and whether the interruption was answered.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

import yaml

from audio_io.files import read_audio
from audio_io.rates import SAMPLE_RATE as RATE

from ..config import load_config
from ..session import SessionOptions, run_file
from ..turn_log import read_turns
from .replay import StateClock
from .scenarios import KNOWN_ONSETS, CutIn, build, cough, silent_after
from .stats import percentile

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT.parent / "shared" / "speech"
QUESTIONS = ["lhotse_common_voice_en_651325.mp3", "coqui-ai-TTS_LJ001-0002.wav", "lhotse_LJ002-0020.wav",
             "lhotse_LJ002-0035.wav", "lhotse_common_voice_en_651325.mp3"]
INTERRUPTION = "lhotse_ES2011a.Headset-0-40s-46s.wav"
ECHOES = [None, (30, -20), (30, -6), (80, -12), (150, -20), (150, -6), (200, -12), (200, -6)]
# The first reply of a session, no greeting before it: the canceller has heard nothing but its probe.
FIRST_REPLY_AT_S = (0.3, 1.0, 2.0, 4.0)
FIRST_REPLY_ECHOES = [None] + [(delay, gain) for delay in (30, 80, 150) for gain in (-20, -10, -6)]
LEAD_S = 1.0  # before the question: the echo probe plays, as when the agent has just started
LONG_REPLIES = {"default_persona": "storyteller"}


def _config(tmp: Path) -> Path:
    data = yaml.safe_load((ROOT / "config.yaml").read_text())
    data.update(LONG_REPLIES)
    data["log"] = {"turns": str(tmp / "turns.jsonl"), "app": str(tmp / "agent.log")}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _replay(wav: Path, tmp: Path, echo, room_voice=None) -> tuple[list[dict], object]:
    import soundfile as sf

    config = load_config(_config(tmp))
    out, log = tmp / "out.wav", tmp / "turns.jsonl"
    options = SessionOptions(log_path=str(log), simulate_echo=echo, room_voice=room_voice)
    asyncio.run(run_file(config, str(wav), str(out), options, StateClock()))  # a silent Reporter
    output, rate = sf.read(str(out), dtype="float32")
    return (read_turns(log) if log.exists() else []), (output, rate)


def interruption(echo, tmp: Path) -> dict:
    """A question, then the AMI speaker talks over the reply 3.5 s after the question ends."""
    question = SPEECH / QUESTIONS[0]
    scenario = build(tmp / "in.wav", [(question, LEAD_S), (SPEECH / INTERRUPTION, LEAD_S + 2.4 + 3.5 - 1.46)])
    turns, (output, rate) = _replay(scenario["path"], tmp, echo)
    onset = scenario["onsets"][1]
    speaking = [t for t in turns if t["playback_start"] is not None and t["playback_start"] < onset]
    if not speaking:
        return {"echo": echo, "valid": False}
    first = speaking[0]
    stop = silent_after(output, rate, onset)
    return {"echo": echo, "valid": True, "detected": bool(first["interrupted"]), "stop_ms": None if stop is None
            else round(stop * 1000), "barge_in_at": first["barge_in_at"], "onset": round(onset, 3),
            "heard": first["heard_text"], "next_reply": turns[-1]["agent_text"] if len(turns) > 1 else ""}


def first_reply(at_s: float, echo, tmp: Path) -> dict:
    """The AMI speaker cuts in `at_s` into the session's first reply, as heard at the speaker."""
    question = SPEECH / QUESTIONS[0]
    scenario = build(tmp / "in.wav", [(question, LEAD_S)], tail_s=1.0)
    clip, _ = read_audio(SPEECH / INTERRUPTION, RATE)
    cut_in = CutIn(clip, KNOWN_ONSETS[INTERRUPTION], at_s, RATE, listen_after_s=scenario["ends"][0])
    turns, (output, rate) = _replay(scenario["path"], tmp, echo, cut_in)
    first = next((t for t in turns if t["playback_start"] is not None), None)
    if first is None or cut_in.onset is None:
        return {"at_s": at_s, "echo": echo, "valid": False}
    stop = silent_after(output, rate, cut_in.onset)
    later = [t for t in turns if t["turn"] > first["turn"] and t["user_text"]]
    return {"at_s": at_s, "echo": echo, "valid": True, "into_reply_s": round(float(cut_in.onset - cut_in.reply_start), 2),
            "detected": bool(first["interrupted"]), "stop_ms": None if stop is None else round(stop * 1000),
            "barge_in_ms": None if first["barge_in_at"] is None else round((first["barge_in_at"] - cut_in.onset) * 1000),
            "answered": any(t["agent_text"] for t in later), "overheard": any(t.get("overheard") for t in later),
            "user_text": " / ".join(t["user_text"] for t in later)}


def first_reply_table(rows: list[dict]) -> str:
    """Detected, stop time and answered, one line per echo setting and one column per moment."""
    lines = ["echo          " + "".join(f"{at:>22}" for at in FIRST_REPLY_AT_S)]
    for echo in FIRST_REPLY_ECHOES:
        cells = []
        for at in FIRST_REPLY_AT_S:
            row = next((r for r in rows if r["echo"] == echo and r["at_s"] == at), None)
            if row is None or not row["valid"]:
                cells.append("-")
                continue
            stop = "-" if row["stop_ms"] is None else f"{row['stop_ms']} ms"
            cells.append(f"{'cut' if row['detected'] else 'MISSED'} {stop} {'answered' if row['answered'] else 'LOST'}")
        label = "no echo" if echo is None else f"{echo[0]} ms {echo[1]} dB"
        lines.append(f"{label:<14}" + "".join(f"{cell:>22}" for cell in cells))
    return "\n".join(lines)


def no_interruption(echo, tmp: Path) -> dict:
    """Five questions in a row: a barge-in that no question explains is a false one.

    A long reply may still be playing when the next question comes; that
    interruption is real and does not count against the agent.
    """
    parts = [(SPEECH / name, LEAD_S + 14.0 * i) for i, name in enumerate(QUESTIONS)]
    scenario = build(tmp / "in.wav", parts, tail_s=2.0)
    turns, _ = _replay(scenario["path"], tmp, echo)
    onsets = scenario["onsets"]
    false = [t for t in turns if t["interrupted"]
             and not any(-0.2 <= t["barge_in_at"] - onset <= 1.0 for onset in onsets)]
    return {"echo": echo, "replies": len(turns), "false_barge_ins": len(false),
            "interrupted_by_next_question": sum(bool(t["interrupted"]) for t in turns) - len(false),
            "false_at": [t["barge_in_at"] for t in false], "onsets": [round(o, 2) for o in onsets],
            "extra_turns": max(0, len(turns) - len(QUESTIONS))}


def backchannel(echo, tmp: Path) -> dict:
    """A 150 ms cough mid-reply: playback pauses, resumes, and the reply completes."""
    scenario = build(tmp / "in.wav", [(SPEECH / QUESTIONS[0], LEAD_S), (cough(0.15), LEAD_S + 5.0)], tail_s=1.0)
    turns, _ = _replay(scenario["path"], tmp, echo)
    whole = len(turns) == 1 and not turns[0]["interrupted"] and turns[0]["heard_text"] == turns[0]["agent_text"]
    return {"echo": echo, "whole": whole, "turns": len(turns)}


def run_first_reply(quick: bool = False) -> list[dict]:
    echoes = FIRST_REPLY_ECHOES[:4:3] if quick else FIRST_REPLY_ECHOES
    rows = []
    for echo in echoes:
        for at_s in FIRST_REPLY_AT_S:
            with tempfile.TemporaryDirectory() as tmp:
                rows.append(first_reply(at_s, echo, Path(tmp)))
            print("first reply", rows[-1], flush=True)
    print(first_reply_table(rows))
    return rows


def _each_echo(name: str, scenario, echoes, results: dict) -> None:
    results[name] = []
    for echo in echoes:
        with tempfile.TemporaryDirectory() as tmp:
            results[name].append(scenario(echo, Path(tmp)))
        print(name, results[name][-1], flush=True)


SECTIONS = ("first_reply", "interruptions", "no_interruption", "backchannel")


def run(out: Path, quick: bool = False, sections: tuple[str, ...] = SECTIONS) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    if "first_reply" in sections:
        results["first_reply"] = run_first_reply(quick)
    if "interruptions" in sections:
        _each_echo("interruptions", interruption, ECHOES[:3] if quick else ECHOES, results)
    if "no_interruption" in sections:
        _each_echo("no_interruption", no_interruption,
                   [None, (80, -12)] if quick else [None, (30, -6), (80, -12), (150, -20), (200, -6)], results)
    if "backchannel" in sections:
        _each_echo("backchannel", backchannel, [None, (80, -12)], results)
    results["summary"] = summarize(results)
    (out / "bargein.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results["summary"], indent=2))
    return results


def summarize(results: dict) -> dict:
    summary = {}
    if "first_reply" in results:
        first = [r for r in results["first_reply"] if r["valid"]]
        stops = [r["stop_ms"] for r in first if r["detected"]]
        summary |= {"first_reply_cells": len(first), "first_reply_detected": sum(r["detected"] for r in first),
                    "first_reply_answered": sum(r["answered"] for r in first),
                    "first_reply_stop_ms_p50": percentile(stops, 50), "first_reply_stop_ms_p90": percentile(stops, 90)}
    if "interruptions" in results:
        valid = [r for r in results["interruptions"] if r["valid"]]
        stops = [r["stop_ms"] for r in valid if r["detected"]]
        summary |= {"interruptions_valid": len(valid),
                    "detected_share": round(sum(r["detected"] for r in valid) / len(valid), 3) if valid else None,
                    "stop_ms_p50": percentile(stops, 50), "stop_ms_p90": percentile(stops, 90)}
    if "no_interruption" in results:
        echo_replies = [r for r in results["no_interruption"] if r["echo"]]
        summary |= {"replies_with_echo": sum(r["replies"] for r in echo_replies),
                    "false_barge_ins_with_echo": sum(r["false_barge_ins"] for r in echo_replies)}
    if "backchannel" in results:
        summary |= {"backchannels_whole": sum(r["whole"] for r in results["backchannel"]),
                    "backchannels": len(results["backchannel"])}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description="Barge-in benchmark on real clips.")
    parser.add_argument("--out", type=Path, default=Path("bench/bargein"))
    parser.add_argument("--quick", action="store_true", help="fewer echo settings")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated, of {', '.join(SECTIONS)} (first_reply: the session's first reply "
                        "cut 0.3-4 s in, 10 echo settings)")
    args = parser.parse_args()
    sections = tuple(name.strip() for name in args.sections.split(","))
    unknown = [name for name in sections if name not in SECTIONS]
    if unknown:
        parser.error(f"--sections: unknown {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    run(args.out, args.quick, sections)


if __name__ == "__main__":
    main()
