"""Voice-to-voice benchmark: the whole agent, replayed in real time on recordings.

Every clip is played to the agent as its microphone, once per run, exactly
as `python main.py --input CLIP` does. Each turn is then measured twice:
from the agent's own turn log (its stages, from stats.py) and from the
audio (the true end of the user's speech in the clip, and the first audible
sample of the reply in the agent's output), so a clock mistake or a late
endpointer cannot flatter the numbers.

The cold start (a fresh process importing everything and loading every
model, until the agent is listening) is timed in a child process, so
imports and caches warmed by earlier runs do not hide any of it.
"""
from __future__ import annotations

import asyncio
import csv
import json
import os
import platform
import re
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from .measure import first_audible, speech_active, speech_mask, true_speech_end
from .report import plot_turns, stage_table
from .stats import STAGES, VOICE_TO_VOICE, stage_durations_ms, summarize, word_error_rate

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIPS = ROOT.parent / "shared" / "speech"
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg"}
COLD_START_CLIP = "synthetic_silence_16k_3s.wav"  # no speech: the probe only needs the agent to start
REPLAY_GRACE_S = 240.0  # model loading plus the longest reply, beyond twice the clip's length
COLD_START_KEYS = ("to_listening_s", "imports_s", "peak_rss_mb")  # medians over the runs
MASK_HOP_S = 0.005  # speech_mask's default hop
TALK_OVER_WINDOW_S = 0.1  # user speech this close to a reply's start was already under way (no one reacts faster)
AUDIO_MEASURES = (("v2v_audio_ms", "voice-to-voice (from audio)"),
                  ("endpoint_lag_ms", "logged speech end - true end"),
                  ("onset_vs_log_ms", "audible onset - logged playback"))


class BenchmarkError(Exception):
    """A benchmark that cannot run; the message says why."""


@dataclass
class StateClock:
    """A Reporter that keeps the agent's lines and the time each state was entered."""

    states: list[tuple[float, str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def state(self, name: str) -> None:
        self.states.append((time.monotonic(), name))

    def first(self, name: str) -> float | None:
        return next((t for t, state in self.states if state == name), None)

    def user(self, turn) -> None:
        self.lines.append(f"you:   {turn.user_text}")

    def agent(self, sentence: str) -> None:
        self.lines.append(f"agent: {sentence}")

    def turn_done(self, record: dict) -> None:
        pass

    def error(self, message: str) -> None:
        self.lines.append(f"error: {message}")

    def info(self, message: str) -> None:
        self.lines.append(message)


# --- measuring one replay --------------------------------------------------

def measure_turn(record: Mapping, mic: np.ndarray, speaker: np.ndarray, rate: int, mask: np.ndarray) -> dict:
    """One turn's stages (from its log record) and what the audio says about it.

    `mic` is the replayed clip, `speaker` the agent's output aligned with it
    at the same `rate`, and `mask` speech_mask(mic, rate).
    """
    row: dict = {"turn": record.get("turn"), "user_text": record.get("user_text", ""),
                 "interrupted": bool(record.get("interrupted")), "error": record.get("error"),
                 **stage_durations_ms(record)}
    speech_end, playback = record.get("speech_end"), record.get("playback_start")
    true_end = true_speech_end(mic, rate, speech_end, mask=mask) if speech_end is not None else None
    # Search from the earlier of the two ends: a reply that began before the
    # true end (over the user's last words) then shows as a negative latency.
    ends = [t for t in (true_end, speech_end) if t is not None]
    onset = first_audible(speaker, rate, min(ends)) if ends else None
    row.update({
        "true_speech_end": _r(true_end), "audible_at": _r(onset),
        "v2v_audio_ms": _ms(onset, true_end),
        "endpoint_lag_ms": _ms(speech_end, true_end),
        "onset_vs_log_ms": _ms(onset, playback),
        "talked_over": _talked_over(mask, onset),
        "agent_already_audible": _already_audible(speaker, rate, true_end),
    })
    return row


def measure_replay(clip: Path, out_wav: Path, turns: Sequence[Mapping]) -> tuple[list[dict], float]:
    """measure_turn for every turn of one replay, and the seconds of speech in the clip."""
    import soundfile as sf

    from audio_io.files import read_audio

    mic, rate = read_audio(clip)
    speaker, out_rate = sf.read(str(out_wav), dtype="float32")
    if out_rate != rate:
        raise BenchmarkError(f"{out_wav} is at {out_rate} Hz but {clip} at {rate} Hz: they must be aligned")
    mask = speech_mask(mic, rate)
    return [measure_turn(record, mic, speaker, rate, mask) for record in turns], float(mask.sum()) * MASK_HOP_S


# --- replaying -------------------------------------------------------------

@dataclass
class Replay:
    clip: Path
    run: int
    out_wav: Path
    log: Path
    duration_s: float
    wall_s: float
    load_s: float | None  # models constructed and loaded in this process (the first run also imports)
    lines: list[str]
    turns: list[dict]


def replay_clip(config, clip: Path, out_dir: Path, run: int) -> Replay:
    """Replay one clip through the full agent in real time, as `main.py --input` does."""
    from audio_io.files import read_audio

    from .session import SessionOptions, run_file
    from .turn_log import read_turns

    stem = clip.stem if run == 1 else f"{clip.stem}.run{run}"
    out_wav, log = out_dir / f"{stem}.out.wav", out_dir / f"{stem}.turns.jsonl"
    log.unlink(missing_ok=True)  # the turn log appends
    clock = StateClock()
    started = time.monotonic()
    audio, rate = read_audio(clip)
    limit = 2 * len(audio) / rate + REPLAY_GRACE_S
    try:
        asyncio.run(asyncio.wait_for(
            run_file(config, str(clip), str(out_wav), SessionOptions(log_path=str(log)), clock), limit))
    except asyncio.TimeoutError:
        raise BenchmarkError(f"replaying {clip.name} took over {limit:.0f} s; see the app log") from None
    wall = time.monotonic() - started
    loading, listening = clock.first("loading models"), clock.first("listening")
    return Replay(clip, run, out_wav, log, len(audio) / rate, wall,
                  None if loading is None or listening is None else listening - loading,
                  clock.lines, read_turns(log) if log.exists() else [])


def find_clips(clips: Path | str | Iterable[Path | str] | None) -> list[Path]:
    """The clips to replay: a folder's audio files (sorted), or the given files."""
    if clips is None:
        clips = DEFAULT_CLIPS
    if isinstance(clips, (str, Path)):
        folder = Path(clips)
        if folder.is_dir():
            found = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise BenchmarkError(f"no audio clips (wav, flac, mp3, ogg) in {folder}")
            return found
        clips = [folder]
    paths = [Path(p) for p in clips]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise BenchmarkError(f"clip not found: {', '.join(missing)}")
    if not paths:
        raise BenchmarkError("no clips given")
    return paths


# --- cold start ------------------------------------------------------------

def measure_cold_start(config_path: Path, clip: Path, out_dir: Path, timeout_s: float = 300) -> dict:
    """Seconds from launching a fresh `python` to the agent listening, and that process's peak RSS.

    The child (this module's --probe) imports what main.py imports, then runs
    the same session.run_file as `main.py --input`; it prints a line when the
    imports are done and one when the agent first enters the "listening"
    state, and exits there. Times are taken here, as the lines arrive, so
    interpreter start-up counts too.
    """
    command = [sys.executable, "-m", "conversation.benchmark", "--probe", str(config_path), str(clip), str(out_dir)]
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
    from conversation.cli import setup_logging  # what main.py loads before anything else

    from .config import load_config
    from .session import SessionOptions, run_file

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


# --- transcripts -----------------------------------------------------------

def whisper_transcripts(clips: Sequence[Path], language: str | None = "en") -> dict[Path, str]:
    """faster-whisper's own transcript of each whole clip, with the bundled model (a reference, not truth)."""
    from faster_whisper import WhisperModel

    from stt.whisper import bundled_model_dir

    model = WhisperModel(str(bundled_model_dir()), device="cpu", compute_type="int8", local_files_only=True)
    texts = {}
    for clip in clips:
        segments, _ = model.transcribe(str(clip), language=language, beam_size=5)
        texts[clip] = " ".join(segment.text.strip() for segment in segments)
    return texts


def manifest_transcripts(folder: Path) -> dict[str, str]:
    """Reference transcripts from the folder's MANIFEST.tsv, if any (speaker/time tags removed)."""
    manifest = folder / "MANIFEST.tsv"
    if not manifest.is_file():
        return {}
    with manifest.open(encoding="utf-8", newline="") as file:
        rows = csv.DictReader(file, delimiter="\t")
        return {row["file"]: re.sub(r"\[[^\]]*\]|\|", " ", row.get("reference_transcript") or "").strip()
                for row in rows if (row.get("reference_transcript") or "").strip()}


# --- the benchmark ---------------------------------------------------------

def run_v2v_benchmark(config_path: str | Path, clips: Path | str | Iterable[Path | str] | None, out_dir: str | Path,
                      console=None, runs: int = 1, cold_start: bool = True, wer: bool = True) -> dict:
    """Replay every clip `runs` times, measure each turn, print a summary; write benchmark.json and a chart.

    `clips`: a folder (all its audio files), a list of files, or None for
    the shared test clips. Returns what benchmark.json holds.
    """
    from rich.console import Console

    from .config import load_config

    console = console or Console()
    config_path = Path(config_path)
    config = load_config(config_path)
    clip_paths = find_clips(clips)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if runs < 1:
        raise BenchmarkError(f"runs must be at least 1, not {runs}")

    result: dict = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "config": str(config_path),
                    "runs": runs, "machine": _machine()}
    if cold_start:
        probe_clip = next((p for p in clip_paths if p.name == COLD_START_CLIP), clip_paths[0])
        console.print(f"cold start: a fresh process until the agent listens ({probe_clip.name}) ...")
        probes = [measure_cold_start(config_path, probe_clip, out_dir) for _ in range(runs)]
        result["cold_start"] = {key: round(float(np.median([p[key] for p in probes])), 2) for key in COLD_START_KEYS}
        result["cold_start"].update(clip=probe_clip.name, to_listening_all_s=[p["to_listening_s"] for p in probes])

    replays: list[Replay] = []
    for run in range(1, runs + 1):
        for clip in clip_paths:
            console.print(f"run {run}/{runs}: replaying {clip.name} in real time ...")
            replays.append(replay_clip(config, clip, out_dir, run))
    # A high-water mark: taken before the reference Whisper model is loaded for the WER.
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    rows, clip_entries = [], []
    references = manifest_transcripts(clip_paths[0].parent)
    whisper = whisper_transcripts(sorted({r.clip for r in replays})) if wer else {}
    for replay in replays:
        measured, speech_s = measure_replay(replay.clip, replay.out_wav, replay.turns)
        for row in measured:
            row["clip"] = replay.clip.name
            row["run"] = replay.run
        rows.extend(measured)
        clip_entries.append(_clip_entry(replay, measured, speech_s, whisper.get(replay.clip),
                                        references.get(replay.clip.name)))

    keys = [stage.name for stage in STAGES] + [key for key, _ in AUDIO_MEASURES]
    result.update({
        "turns_total": len(rows),
        "talked_over": sum(row["talked_over"] for row in rows),
        "interrupted": sum(row["interrupted"] for row in rows),
        "errors": sum(bool(row["error"]) for row in rows),
        # In this process: the first load includes the libraries' imports, later ones are warm.
        "model_load_s": {"first": _r(replays[0].load_s, 2),
                         **summarize([{"load": r.load_s} for r in replays], ["load"])["load"]},
        "summary_ms": summarize(rows, keys),
        "clips": clip_entries,
        "turns": rows,
    })
    result["chart"] = str(_chart(replays, rows, out_dir / "benchmark.png"))
    (out_dir / "benchmark.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print_summary(result, rows, console)
    console.print(f"results in {out_dir / 'benchmark.json'}, chart {result['chart']}")
    return result


def print_summary(result: Mapping, rows: Sequence[Mapping], console) -> None:
    from rich.table import Table

    title = (f"voice-to-voice: {result['turns_total']} turns, {len(result['clips'])} replays, "
             f"{result['interrupted']} interrupted, {result['errors']} errors, "
             f"{result['talked_over']} talked over the user")
    console.print(stage_table(rows, title, extra=AUDIO_MEASURES))
    clips = Table(title="per replay", caption="v2v: p50 ms; WER of the agent's transcript vs Whisper on the "
                  "whole clip / vs the reference text")
    clips.add_column("clip", overflow="fold", min_width=20)
    for column in ("secs", "turns", "v2v log", "v2v audio", "WER"):
        clips.add_column(column, justify="right", no_wrap=True)
    for entry in result["clips"]:
        name = Path(entry["clip"]).stem + ("" if result["runs"] == 1 else f" run {entry['run']}")
        turns = str(entry["turns"]) + (f", {entry['talked_over']} over" if entry["talked_over"] else "")
        clips.add_row(name, f"{entry['duration_s']:.1f}", turns, _fmt(entry["v2v_log_p50_ms"]),
                      _fmt(entry["v2v_audio_p50_ms"]),
                      f"{_pct(entry.get('wer_vs_whisper'))} / {_pct(entry.get('wer_vs_reference'))}")
    console.print(clips)
    cold = result.get("cold_start")
    if cold:
        runs = "" if len(cold["to_listening_all_s"]) == 1 else f" (median of {cold['to_listening_all_s']})"
        console.print(f"cold start to listening: {cold['to_listening_s']:.2f} s{runs}, of which imports "
                      f"{cold['imports_s']:.2f} s; peak RSS then {cold['peak_rss_mb']:.0f} MB")
    load = result["model_load_s"]
    console.print(f"model load in this process: first {load['first']} s, p50 {load['p50']} s; "
                  f"benchmark peak RSS {result['peak_rss_mb']:.0f} MB")


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m conversation.benchmark [CLIP|FOLDER ...] [--out DIR] [--runs N]`; also the cold-start probe."""
    import argparse

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--probe"]:
        _probe(*argv[1:4])
        return 1  # the probe exits when listening; getting here means it never did
    parser = argparse.ArgumentParser(prog="conversation.benchmark", description="voice-to-voice benchmark")
    parser.add_argument("clips", nargs="*", help="clips or one folder (default: the shared speech clips)")
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--out", default="bench", help="results folder (default: bench)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--no-cold-start", action="store_true")
    parser.add_argument("--no-wer", action="store_true")
    args = parser.parse_args(argv)
    from conversation.cli import setup_logging

    from .config import ConfigError

    clips = (args.clips[0] if len(args.clips) == 1 else args.clips) or None
    try:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        setup_logging(str(Path(args.out) / "agent.log"))
        run_v2v_benchmark(args.config, clips, args.out, runs=args.runs, cold_start=not args.no_cold_start,
                          wer=not args.no_wer)
    except (BenchmarkError, ConfigError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _clip_entry(replay: Replay, measured: Sequence[Mapping], speech_s: float, whisper: str | None,
                reference: str | None) -> dict:
    transcript = " ".join(row["user_text"] for row in measured if row["user_text"])
    entry = {
        "clip": replay.clip.name, "run": replay.run, "duration_s": round(replay.duration_s, 2),
        "speech_s": round(speech_s, 2), "wall_s": round(replay.wall_s, 2), "load_s": _r(replay.load_s, 2),
        "turns": len(measured),
        "talked_over": sum(row["talked_over"] for row in measured),
        "v2v_log_p50_ms": summarize(measured, [VOICE_TO_VOICE.name])[VOICE_TO_VOICE.name]["p50"],
        "v2v_audio_p50_ms": summarize(measured, ["v2v_audio_ms"])["v2v_audio_ms"]["p50"],
        "transcript": transcript, "out_wav": str(replay.out_wav), "log": str(replay.log), "console": replay.lines,
    }
    if whisper is not None:
        # Whisper invents words for silence ("you"); with no speech in the clip there is nothing to score.
        entry.update(whisper_transcript=whisper,
                     wer_vs_whisper=word_error_rate(whisper, transcript) if speech_s else None)
    if reference is not None:
        entry.update(reference=reference, wer_vs_reference=word_error_rate(reference, transcript))
    return entry


def _chart(replays: Sequence[Replay], rows: Sequence[Mapping], png: Path) -> Path:
    records = [record for replay in replays for record in replay.turns]
    labels = [_turn_label(row) for row in rows]
    audio = []
    for record, row in zip(records, rows):
        end = record.get("speech_end")
        audio.append({"true_end_ms": _ms(row["true_speech_end"], end), "audible_ms": _ms(row["audible_at"], end),
                      "v2v_audio_ms": row["v2v_audio_ms"]})
    return plot_turns(records, png, "voice-to-voice benchmark", labels=labels, audio=audio)


def _turn_label(row: Mapping) -> str:
    run = "" if row["run"] == 1 else f" run {row['run']}"
    return f"{Path(row['clip']).stem[:26]}{run} #{row['turn']}"


def _talked_over(mask: np.ndarray, onset: float | None) -> bool:
    """The user was speaking when the reply became audible."""
    return onset is not None and speech_active(mask, onset - TALK_OVER_WINDOW_S, onset + TALK_OVER_WINDOW_S)


def _already_audible(speaker: np.ndarray, rate: int, at: float | None) -> bool:
    """The agent was still talking at the user's speech end (an earlier reply): the audio onset is unreliable."""
    if at is None:
        return False
    heard = first_audible(speaker, rate, max(0.0, at - 0.05))
    return heard is not None and heard <= at


def _machine() -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "load_avg_1min": round(os.getloadavg()[0], 2)}  # other work on the machine slows every stage


def _ms(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else round((later - earlier) * 1000, 1)


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


if __name__ == "__main__":
    sys.exit(main())
