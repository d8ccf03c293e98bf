"""Barge-in benchmark: interruptions, backchannels and echo, replayed in real time.

    python -m conversation.benchmarks.bargein [--out DIR] [--quick]

Each conversation is built from real clips: the user says something, the agent
answers, and (in the interruption cases) the user speaks again while the
agent is talking. It runs without echo and with `--simulate-echo` across
delays and gains, then reports the stop time (user onset to silent output,
from OUT.wav), the share of interruptions detected, false barge-ins over
uninterrupted replies, and whether short noises left replies whole.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

import yaml

from ..config import load_config
from ..session import SessionOptions, run_file
from ..turn_log import read_turns
from .replay import StateClock
from .scenarios import build, cough, silent_after
from .stats import percentile

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT.parent / "shared" / "speech"
QUESTIONS = ["lhotse_common_voice_en_651325.mp3", "coqui-ai-TTS_LJ001-0002.wav", "lhotse_LJ002-0020.wav",
             "lhotse_LJ002-0035.wav", "lhotse_common_voice_en_651325.mp3"]
INTERRUPTION = "lhotse_ES2011a.Headset-0-40s-46s.wav"
ECHOES = [None, (30, -20), (30, -6), (80, -12), (150, -20), (150, -6), (200, -12), (200, -6)]
LONG_REPLIES = {"default_persona": "storyteller"}


def _config(tmp: Path) -> Path:
    data = yaml.safe_load((ROOT / "config.yaml").read_text())
    data.update(LONG_REPLIES)
    data["log"] = {"turns": str(tmp / "turns.jsonl"), "app": str(tmp / "agent.log")}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _replay(wav: Path, tmp: Path, echo) -> tuple[list[dict], object]:
    import soundfile as sf

    config = load_config(_config(tmp))
    out, log = tmp / "out.wav", tmp / "turns.jsonl"
    options = SessionOptions(log_path=str(log), simulate_echo=echo)
    asyncio.run(run_file(config, str(wav), str(out), options, StateClock()))  # a silent Reporter
    output, rate = sf.read(str(out), dtype="float32")
    return (read_turns(log) if log.exists() else []), (output, rate)


def interruption(echo, tmp: Path) -> dict:
    """A question, then the AMI speaker talks over the reply 3.5 s after the question ends."""
    question = SPEECH / QUESTIONS[0]
    scenario = build(tmp / "in.wav", [(question, 0.0), (SPEECH / INTERRUPTION, 2.4 + 3.5 - 1.46)])
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


def no_interruption(echo, tmp: Path) -> dict:
    """Five questions in a row: a barge-in that no question explains is a false one.

    A long reply may still be playing when the next question comes; that
    interruption is real and does not count against the agent.
    """
    parts = [(SPEECH / name, 14.0 * i) for i, name in enumerate(QUESTIONS)]
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
    scenario = build(tmp / "in.wav", [(SPEECH / QUESTIONS[0], 0.0), (cough(0.15), 5.0)], tail_s=1.0)
    turns, _ = _replay(scenario["path"], tmp, echo)
    whole = len(turns) == 1 and not turns[0]["interrupted"] and turns[0]["heard_text"] == turns[0]["agent_text"]
    return {"echo": echo, "whole": whole, "turns": len(turns)}


def run(out: Path, quick: bool = False) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    echoes = ECHOES[:3] if quick else ECHOES
    results = {"interruptions": [], "no_interruption": [], "backchannel": []}
    for echo in echoes:
        with tempfile.TemporaryDirectory() as tmp:
            results["interruptions"].append(interruption(echo, Path(tmp)))
        print("interruption", results["interruptions"][-1], flush=True)
    for echo in ([None, (80, -12)] if quick else [None, (30, -6), (80, -12), (150, -20), (200, -6)]):
        with tempfile.TemporaryDirectory() as tmp:
            results["no_interruption"].append(no_interruption(echo, Path(tmp)))
        print("no interruption", results["no_interruption"][-1], flush=True)
    for echo in (None, (80, -12)):
        with tempfile.TemporaryDirectory() as tmp:
            results["backchannel"].append(backchannel(echo, Path(tmp)))
        print("backchannel", results["backchannel"][-1], flush=True)
    results["summary"] = summarize(results)
    (out / "bargein.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results["summary"], indent=2))
    return results


def summarize(results: dict) -> dict:
    valid = [r for r in results["interruptions"] if r["valid"]]
    stops = [r["stop_ms"] for r in valid if r["detected"]]
    echo_replies = [r for r in results["no_interruption"] if r["echo"]]
    return {
        "interruptions_valid": len(valid),
        "detected_share": round(sum(r["detected"] for r in valid) / len(valid), 3) if valid else None,
        "stop_ms_p50": percentile(stops, 50),
        "stop_ms_p90": percentile(stops, 90),
        "replies_with_echo": sum(r["replies"] for r in echo_replies),
        "false_barge_ins_with_echo": sum(r["false_barge_ins"] for r in echo_replies),
        "backchannels_whole": sum(r["whole"] for r in results["backchannel"]),
        "backchannels": len(results["backchannel"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Barge-in benchmark on real clips.")
    parser.add_argument("--out", type=Path, default=Path("bench/bargein"))
    parser.add_argument("--quick", action="store_true", help="fewer echo settings")
    args = parser.parse_args()
    run(args.out, args.quick)


if __name__ == "__main__":
    main()
