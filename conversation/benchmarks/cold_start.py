"""Cold start: a fresh process, from launch until the agent is listening.

Timed in a child process, so imports and caches warmed by earlier runs do
not hide any of it. The child is this module run as a script:

    python -m conversation.benchmarks.cold_start CONFIG CLIP OUT_DIR
"""
from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

from .replay import ROOT, BenchmarkError, StateClock


def measure_cold_start(config_path: Path, clip: Path, out_dir: Path, timeout_s: float = 300) -> dict:
    """Seconds from launching a fresh `python` to the agent listening, and that process's peak RSS.

    The child (`_probe`) imports what a session needs, then runs the same
    session.run_file as `main.py --input`; it prints a line when the
    imports are done and one when the agent first enters the "listening"
    state, and exits there. Times are taken here, as the lines arrive, so
    interpreter start-up counts too.
    """
    command = [sys.executable, "-m", "conversation.benchmarks.cold_start", str(config_path), str(clip), str(out_dir)]
    started = time.monotonic()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(timeout_s, child.kill)  # a hung start must not hang the benchmark
    watchdog.start()
    marks: dict[str, float] = {}
    rss_kb = 0
    try:
        for line in child.stdout:
            word, _, rest = line.strip().partition(" ")
            if word in ("IMPORTED", "LISTENING"):
                marks[word] = time.monotonic() - started
            if word == "LISTENING":
                rss_kb = int(rest)
                break
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
        _, errors = child.communicate(timeout=30)
    if "LISTENING" not in marks:
        last = (errors.strip().splitlines() or [f"no output within {timeout_s:.0f} s"])[-1]
        raise BenchmarkError(f"cold-start probe never reached 'listening': {last}")
    return {"to_listening_s": round(marks["LISTENING"], 2), "imports_s": round(marks.get("IMPORTED", 0.0), 2),
            "peak_rss_mb": round(rss_kb / 1024, 1)}


def _probe(config_path: str, clip: str, out_dir: str) -> None:
    """Runs in the child process of measure_cold_start."""
    # What a session needs, as main.py loads it; IMPORTED below marks the end of the imports.
    from ..config import load_config
    from ..log_setup import setup_logging
    from ..session import SessionOptions, run_file

    print("IMPORTED", flush=True)
    config = load_config(config_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    setup_logging(str(out / "cold_start.log"))

    class ExitWhenListening(StateClock):
        def state(self, name: str) -> None:
            if name == "listening":
                print("LISTENING", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
                os._exit(0)  # measured: skip the replay and the model shutdown

    asyncio.run(run_file(config, clip, str(out / "cold_start.out.wav"),
                         SessionOptions(log_path=str(out / "cold_start.turns.jsonl")), ExitWhenListening()))


if __name__ == "__main__":
    _probe(*sys.argv[1:4])
    sys.exit(1)  # the probe exits when listening; getting here means it never did
