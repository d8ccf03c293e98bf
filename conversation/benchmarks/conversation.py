"""Conversation benchmark: one spoken conversation through the whole agent, voice-to-voice on every turn.

    python -m conversation.benchmarks.conversation [--runs N] [--out bench/conversation] [--clips DIR]
    python main.py --benchmark conversation [--bench-runs N] [--bench-out bench]

The conversation (conversation_script.FULL: sixteen utterances with a persona
switch and back, a cut-in into a story, and a long stretch of questions) is
replayed in file mode, in real time, through the default agent. Every
utterance's voice-to-voice is read from the audio (its last speech in the
input to the agent's first sound after it, long_conversation.voice_to_voice)
beside the turn log's figure; then each stage's time in the pipeline is set
beside the same model's time alone (stage_budget.py). With several runs, the
median and the spread (min-max) of p50 and p90; each run samples its own
replies (llm.seed is the run's number). Writes conversation.json,
stage_budget.md and a latency waterfall per run.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import soundfile as sf

from audio_io.rates import SAMPLE_RATE as RATE

from ..config import Config, ConfigError, load_config
from ..session import SessionOptions, run_file
from ..turn_log import read_turns
from .conversation_script import FULL, SHORT, Conversation, Script, build
from .latency_report import plot_turns
from .long_conversation import FOUND_SHARE, Utterance, heard, voice_to_voice
from .replay import DEFAULT_CLIPS, BenchmarkError, StateClock
from .scenarios import CutIn, silent_after
from .stage_budget import TurnInputs, budget, budget_table, measure_alone
from .stats import percentile
from .v2v import machine

CUT_MATCH_S = 1.0  # a reply stopped this close to the cut-in's onset was cut by it
TURN_NEAR_S = 1.0  # the turn whose speech end is this close to an utterance's end carries its marks in the chart
STOP_WINDOW_S = 0.2  # the speaker stopped: silent this long (a pause between words is shorter)


@dataclass
class TurnKeeper(StateClock):
    """A silent Reporter that keeps, for each logged turn, the audio it transcribed and its first piece."""

    announced: list = field(default_factory=list)
    inputs: list[TurnInputs | None] = field(default_factory=list)  # one per turn-log record, in order

    def user(self, turn) -> None:
        super().user(turn)
        self.announced.append(turn)

    def turn_done(self, record: dict) -> None:
        # The record is the turn's own, renumbered: its speech end and words find it (a resumed reply has none).
        turn = next((t for t in reversed(self.announced) if t.user_text == record["user_text"]
                     and round(t.speech_end, 3) == record["speech_end"]), None)
        self.inputs.append(None if turn is None else TurnInputs(turn.audio, turn.sentences[0] if turn.sentences else ""))


def run_once(config: Config, conversation: Conversation, out: Path, run: int) -> dict:
    """Replay the conversation once, analyse it, then time each stage alone; writes the run's waterfall.

    Each run samples the replies with its own seed (llm.seed = the run's number): one seed gives the same
    replies every time, and which of them the repeat guard asks for twice weighs on the p90.
    """
    config = config.model_copy(update={"llm": config.llm.model_copy(update={"seed": run})})
    stem = "conversation" if run == 1 else f"conversation.run{run}"
    log, out_wav = out / f"{stem}.turns.jsonl", out / f"{stem}.out.wav"
    log.unlink(missing_ok=True)  # the turn log appends
    keeper, cut_in = TurnKeeper(), conversation.cut_in()
    asyncio.run(run_file(config, str(conversation.recording), str(out_wav),
                         SessionOptions(log_path=str(log), room_voice=cut_in), keeper))
    output, rate = sf.read(str(out_wav), dtype="float32")
    records = read_turns(log) if log.exists() else []
    if not records:
        raise BenchmarkError(f"the agent answered nothing in run {run}; see the app log")
    result = analyse(conversation, cut_in, records, output, rate)
    alone = asyncio.run(measure_alone(config, records, keeper.inputs))
    result.update(run=run, stage_budget=budget(records, alone), alone=alone, out_wav=str(out_wav), log=str(log))
    result["chart"] = str(chart(result, out / f"{stem}.png"))
    return result


def analyse(conversation: Conversation, cut_in: CutIn, records: list[dict], output: np.ndarray, rate: int) -> dict:
    """Every utterance (the cut-in too, where it was mixed in) answered or not, and voice-to-voice over all."""
    interruption = conversation.placed_interruption(cut_in)
    said = sorted(conversation.lines + ([interruption] if interruption else []), key=lambda u: u.start)
    latencies = voice_to_voice(said, output, rate)
    utterances = []
    for utterance, latency in zip(said, latencies):
        share = heard(utterance, records)
        utterances.append({"said": utterance.text, "start": round(utterance.start, 2), "end": round(utterance.end, 2),
                           "cut_in": utterance is interruption, "v2v_ms": latency, "heard_share": round(share, 2),
                           "status": "answered" if latency is not None else
                           "lost" if share < FOUND_SHARE else "no reply before the next utterance"})
    return {
        "utterances": utterances,
        "answered": sum(u["status"] == "answered" for u in utterances),
        "v2v_audio_ms": _p50_p90([u["v2v_ms"] for u in utterances]),
        "v2v_log_ms": _p50_p90([record["voice_to_voice_ms"] for record in records]),
        "commands": [record["command"] for record in records if record.get("command")],
        "cut_in": cut_in_report(cut_in, interruption, records, output, rate, utterances),
        "turns": records,
    }


def cut_in_report(cut_in: CutIn, interruption: Utterance | None, records: Sequence[Mapping], output: np.ndarray,
                  rate: int, utterances: Sequence[Mapping]) -> dict:
    """Where the cut-in landed, whether it cut the reply, how soon the speaker fell silent, and its answer."""
    if interruption is None:
        return {"placed": False}
    cut = any(record["interrupted"] and record["playback_stopped_at"] is not None
              and abs(record["playback_stopped_at"] - cut_in.onset) < CUT_MATCH_S for record in records)
    stop = silent_after(output, rate, cut_in.onset, STOP_WINDOW_S)
    answer = next(u for u in utterances if u["cut_in"])
    return {"placed": True, "reply_start_s": round(cut_in.reply_start, 2), "onset_s": round(cut_in.onset, 2),
            "into_reply_s": cut_in.at_s, "reply_cut": cut, "stop_ms": None if stop is None else round(stop * 1000),
            "answered": answer["status"] == "answered", "answer_v2v_ms": answer["v2v_ms"]}


def chart(result: Mapping, png: Path) -> Path:
    """The turn log's waterfall, with each utterance's true end and audible reply marked on its last turn."""
    records = result["turns"]
    audio: list[dict] = [{} for _ in records]
    for utterance in result["utterances"]:
        ends = [abs(record["speech_end"] - utterance["end"]) for record in records]
        nearest = int(np.argmin(ends))
        if utterance["v2v_ms"] is not None and ends[nearest] < TURN_NEAR_S:
            offset = (utterance["end"] - records[nearest]["speech_end"]) * 1000
            audio[nearest] = {"true_end_ms": offset, "audible_ms": offset + utterance["v2v_ms"],
                              "v2v_audio_ms": utterance["v2v_ms"]}
    labels = [f"#{r['turn']} {r['persona'][:11]}: {r['user_text'][:30]}{' [command]' if r.get('command') else ''}"
              for r in records]
    v2v = result["v2v_audio_ms"]
    title = f"conversation run {result['run']}: voice-to-voice from the audio p50 {v2v['p50']} ms, p90 {v2v['p90']} ms"
    return plot_turns(records, png, title, labels=labels, audio=audio)


def across_runs(runs: Sequence[Mapping]) -> dict:
    """Median and spread (min-max) over the runs of p50 and p90, and the median stage budget."""
    summary = {key: {q: _spread([run[key][q] for run in runs]) for q in ("p50", "p90")}
               for key in ("v2v_audio_ms", "v2v_log_ms")}
    rows = []
    for stage_rows in zip(*(run["stage_budget"] for run in runs)):
        inside = percentile([row["pipeline_p50_ms"] for row in stage_rows], 50)
        alone = percentile([row["alone_p50_ms"] for row in stage_rows], 50)
        rows.append({**stage_rows[0], "pipeline_p50_ms": inside, "alone_p50_ms": alone,
                     "ratio": round(inside / alone, 2) if inside is not None and alone else None,
                     "turns": sum(row["turns"] for row in stage_rows)})
    summary["stage_budget"] = rows
    return summary


def run_benchmark(config_path: str | Path, out: str | Path, runs: int = 1, clips_dir: str | Path | None = None,
                  script: Script = FULL, say: Callable[[str], None] = print) -> dict:
    """Build the conversation, replay it `runs` times, and write conversation.json and stage_budget.md."""
    if runs < 1:
        raise BenchmarkError(f"runs must be at least 1, not {runs}")
    clips_dir = Path(clips_dir) if clips_dir else DEFAULT_CLIPS
    if not clips_dir.is_dir():
        raise BenchmarkError(f"clip folder not found: {clips_dir}")
    config, out = load_config(config_path), Path(out)
    conversation = build(script, out, clips_dir)
    say(f"{len(conversation.lines) + 1} utterances (one a cut-in), "
        f"{len(sf.read(str(conversation.recording))[0]) / RATE / 60:.1f} min of input, {runs} run(s)")
    results = []
    for run in range(1, runs + 1):
        say(f"run {run}/{runs}: replaying the conversation in real time, then each stage alone ...")
        results.append(run_once(config, conversation, out, run))
        say(run_line(results[-1]))
    report = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "config": str(config_path),
              "machine": machine(), "summary": across_runs(results), "runs": results}
    (out / "conversation.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    table = budget_table(report["summary"]["stage_budget"])
    (out / "stage_budget.md").write_text(table + "\n")
    say("\n".join(summary_lines(report["summary"], runs)) + "\n" + table)
    say(f"results in {out / 'conversation.json'}, waterfall {results[0]['chart']}")
    return report


def run_line(result: Mapping) -> str:
    audio, log, cut = result["v2v_audio_ms"], result["v2v_log_ms"], result["cut_in"]
    cut_text = ("cut-in not placed" if not cut["placed"] else
                f"cut-in {'cut the reply' if cut['reply_cut'] else 'MISSED'}, silent after {cut['stop_ms']} ms, "
                f"{'answered' if cut['answered'] else 'NOT answered'}")
    return (f"  {result['answered']} of {len(result['utterances'])} utterances answered; commands "
            f"{', '.join(result['commands']) or 'none'}; {cut_text}; voice-to-voice from the audio p50 {audio['p50']} "
            f"ms, p90 {audio['p90']} ms (turn log p50 {log['p50']}, p90 {log['p90']})")


def summary_lines(summary: Mapping, runs: int) -> list[str]:
    lines = []
    for key, name in (("v2v_audio_ms", "from the audio"), ("v2v_log_ms", "from the turn log")):
        parts = []
        for q in ("p50", "p90"):
            value = summary[key][q]
            spread = "" if runs == 1 else f" ({value['min']}-{value['max']} over {runs} runs)"
            parts.append(f"{q} {value['median']} ms{spread}")
        lines.append(f"voice-to-voice over every turn, {name}: {', '.join(parts)}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conversation.benchmarks.conversation",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--out", default="bench/conversation", help="results folder (default: bench/conversation)")
    parser.add_argument("--runs", type=int, default=1, help="replay the conversation N times")
    parser.add_argument("--clips", help=f"folder of the human clips and MANIFEST.tsv (default: {DEFAULT_CLIPS})")
    parser.add_argument("--short", action="store_true", help="three utterances and a cut-in, for a quick check")
    args = parser.parse_args(argv)
    from ..log_setup import setup_logging

    try:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        setup_logging(str(Path(args.out) / "agent.log"))
        run_benchmark(args.config, args.out, args.runs, args.clips, SHORT if args.short else FULL)
    except (BenchmarkError, ConfigError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _p50_p90(values: Sequence[float | None]) -> dict:
    present = [v for v in values if v is not None]
    return {"p50": _ms(percentile(present, 50)), "p90": _ms(percentile(present, 90)), "n": len(present)}


def _spread(values: Sequence[float | None]) -> dict:
    present = [v for v in values if v is not None]
    return {"median": _ms(percentile(present, 50)), "min": min(present, default=None),
            "max": max(present, default=None)}


def _ms(value: float | None) -> int | None:
    return None if value is None else round(value)


if __name__ == "__main__":
    sys.exit(main())
