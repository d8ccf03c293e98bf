"""Voice-to-voice benchmark: the whole agent, replayed in real time on recordings.

    python -m conversation.benchmarks.v2v [CLIP|FOLDER ...] [--out DIR] [--runs N]

Every clip is played to the agent as its microphone, once per run, exactly
as `python main.py --input CLIP` does (replay.py). Each turn is then
measured twice: from the agent's own turn log (its stages, from
conversation/latency.py) and from the audio (measure.py: the true end of the
user's speech in the clip, and the first audible sample of the reply in the
agent's output), so a clock mistake or a late endpointer cannot flatter the
numbers. The cold start is timed in a child process (cold_start.py).
"""
from __future__ import annotations

import csv
import json
import os
import platform
import re
import resource
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from stt.settings import SttSettings

from ..latency import STAGES, VOICE_TO_VOICE
from .cold_start import measure_cold_start
from .latency_report import plot_turns, stage_table
from .measure import measure_replay, ms_between, round_or_none
from .replay import BenchmarkError, ClipReplay, find_clips, replay_clip
from .stats import summarize, word_error_rate

COLD_START_CLIP = "synthetic_silence_16k_3s.wav"  # no speech: the probe only needs the agent to start
COLD_START_KEYS = ("to_listening_s", "imports_s", "peak_rss_mb")  # medians over the runs
AUDIO_MEASURES = (("v2v_audio_ms", "voice-to-voice (from audio)"),
                  ("endpoint_lag_ms", "logged speech end - true end"),
                  ("onset_vs_log_ms", "audible onset - logged playback"))


# --- transcripts -----------------------------------------------------------

def whisper_transcripts(clips: Sequence[Path], settings: SttSettings | None = None) -> dict[Path, str]:
    """faster-whisper's own transcribe() of each whole clip (a reference, not truth).

    The same model, compute type, language and beam size as the agent's
    transcriber (`settings`, the config's stt); the rest at faster-whisper's
    defaults. It hears the clip as the agent does: read and resampled by
    audio_io.files.
    """
    from audio_io.files import read_audio
    from stt.whisper import SAMPLE_RATE, load_model

    settings = settings or SttSettings()
    model = load_model(settings)
    language = None if settings.language in (None, "auto") else settings.language
    texts = {}
    for clip in clips:
        audio, _ = read_audio(clip, SAMPLE_RATE)
        segments, _ = model.transcribe(audio, language=language, beam_size=settings.beam_size)
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

    from ..config import load_config

    console = console or Console()
    config_path = Path(config_path)
    config = load_config(config_path)
    clip_paths = find_clips(clips)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if runs < 1:
        raise BenchmarkError(f"runs must be at least 1, not {runs}")

    result: dict = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "config": str(config_path),
                    "runs": runs, "machine": machine()}
    if cold_start:
        probe_clip = next((p for p in clip_paths if p.name == COLD_START_CLIP), clip_paths[0])
        console.print(f"cold start: a fresh process until the agent listens ({probe_clip.name}) ...")
        probes = [measure_cold_start(config_path, probe_clip, out_dir) for _ in range(runs)]
        result["cold_start"] = {key: round(float(np.median([p[key] for p in probes])), 2) for key in COLD_START_KEYS}
        result["cold_start"].update(clip=probe_clip.name, to_listening_all_s=[p["to_listening_s"] for p in probes])

    replays: list[ClipReplay] = []
    for run in range(1, runs + 1):
        for clip in clip_paths:
            console.print(f"run {run}/{runs}: replaying {clip.name} in real time ...")
            replays.append(replay_clip(config, clip, out_dir, run))
    # A high-water mark: taken before the reference Whisper model is loaded for the WER.
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    rows, clip_entries = [], []
    references = manifest_transcripts(clip_paths[0].parent)
    whisper = whisper_transcripts(sorted({r.clip for r in replays}), config.stt) if wer else {}
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
        "model_load_s": {"first": round_or_none(replays[0].load_s, 2),
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
    """`python -m conversation.benchmarks.v2v [CLIP|FOLDER ...] [--out DIR] [--runs N]`."""
    import argparse

    parser = argparse.ArgumentParser(prog="conversation.benchmarks.v2v", description="voice-to-voice benchmark")
    parser.add_argument("clips", nargs="*", help="clips or one folder (default: the shared speech clips)")
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--out", default="bench", help="results folder (default: bench)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--no-cold-start", action="store_true")
    parser.add_argument("--no-wer", action="store_true")
    args = parser.parse_args(argv)
    from ..config import ConfigError
    from ..log_setup import setup_logging

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


def _clip_entry(replay: ClipReplay, measured: Sequence[Mapping], speech_s: float, whisper: str | None,
                reference: str | None) -> dict:
    transcript = " ".join(row["user_text"] for row in measured if row["user_text"])
    entry = {
        "clip": replay.clip.name, "run": replay.run, "duration_s": round(replay.duration_s, 2),
        "speech_s": round(speech_s, 2), "wall_s": round(replay.wall_s, 2), "load_s": round_or_none(replay.load_s, 2),
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


def _chart(replays: Sequence[ClipReplay], rows: Sequence[Mapping], png: Path) -> Path:
    records = [record for replay in replays for record in replay.turns]
    labels = [_turn_label(row) for row in rows]
    audio = []
    for record, row in zip(records, rows):
        end = record.get("speech_end")
        audio.append({"true_end_ms": ms_between(row["true_speech_end"], end),
                      "audible_ms": ms_between(row["audible_at"], end),
                      "v2v_audio_ms": row["v2v_audio_ms"]})
    return plot_turns(records, png, "voice-to-voice benchmark", labels=labels, audio=audio)


def _turn_label(row: Mapping) -> str:
    run = "" if row["run"] == 1 else f" run {row['run']}"
    return f"{Path(row['clip']).stem[:26]}{run} #{row['turn']}"


def machine() -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "load_avg_1min": round(os.getloadavg()[0], 2)}  # other work on the machine slows every stage


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


if __name__ == "__main__":
    sys.exit(main())
