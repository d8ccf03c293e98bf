"""`python main.py report turns.jsonl`: latency per stage, and a chart beside the log."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Mapping, Sequence

from ..latency import CHAIN, STAGES, VOICE_TO_VOICE, stage_durations_ms
from .stats import summarize

STAGE_COLOURS = {
    "endpoint_wait": "#9e9e9e", "stt": "#4e79a7", "llm_first_token": "#f28e2b", "first_chunk": "#edc948",
    "tts_first_audio": "#59a14f", "commit_hold": "#bab0ac", "output": "#b07aa1",
}
REQUIRED_FIELDS = ("turn", "speech_end", "playback_start")


class ReportError(Exception):
    """A turn log that cannot be reported on; the message says why."""


def load_turns(path: str | Path) -> list[dict]:
    """The turn records of a log, or a ReportError naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"turn log not found: {path}")
    turns = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ReportError(f"{path} line {number} is not JSON ({error.msg}); is this a turn log?") from None
        if not isinstance(record, dict) or any(name not in record for name in REQUIRED_FIELDS):
            raise ReportError(f"{path} line {number} is not a turn record (needs {', '.join(REQUIRED_FIELDS)})")
        turns.append(record)
    if not turns:
        raise ReportError(f"turn log {path} has no turns yet: talk to the agent first")
    return turns


def stage_rows(turns: Sequence[Mapping]) -> list[dict]:
    """Each turn's stage durations (ms), keyed by stage name."""
    return [stage_durations_ms(turn) for turn in turns]


def stage_table(rows: Sequence[Mapping], title: str, extra: Sequence[tuple[str, str]] = ()):
    """A rich table of p50/p90 per stage; `extra` adds (key, label) rows measured elsewhere."""
    from rich.table import Table

    table = Table(title=title)
    for column, justify in (("stage", "left"), ("p50 ms", "right"), ("p90 ms", "right"), ("turns", "right")):
        table.add_column(column, justify=justify)
    keys = [(stage.name, stage.label) for stage in STAGES] + list(extra)
    summary = summarize(rows, [key for key, _ in keys])
    for key, label in keys:
        stats = summary[key]
        bold = key.startswith(VOICE_TO_VOICE.name)
        table.add_row(f"[bold]{label}[/]" if bold else label, _ms(stats["p50"]), _ms(stats["p90"]),
                      str(stats["n"]), end_section=key == CHAIN[-1].name)
    return table


def plot_turns(turns: Sequence[Mapping], png: Path, title: str, labels: Sequence[str] | None = None,
               audio: Sequence[Mapping] | None = None) -> Path:
    """A per-turn latency waterfall (logged speech end at 0) and a voice-to-voice histogram, as one PNG.

    `audio`, when given, holds per turn what the recordings say (keys
    true_end_ms and audible_ms, offsets from the logged speech end, and
    v2v_audio_ms): drawn as markers on each bar and as a second histogram.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, and no GUI thread
    import matplotlib.pyplot as plt

    labels = list(labels or [f"turn {turn.get('turn', i + 1)}" for i, turn in enumerate(turns)])
    fig, (waterfall, histogram) = plt.subplots(
        2, 1, figsize=(12, 3.2 + 0.32 * len(turns) + 3), gridspec_kw={"height_ratios": [max(3, len(turns)), 3]})
    _draw_waterfall(waterfall, turns, labels, audio)
    _draw_histogram(histogram, turns, audio)
    fig.suptitle(title)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def report(log_path: str | Path, console=None, png_path: str | Path | None = None) -> Path:
    """Print the latency table for a turn log and write its chart; returns the PNG path."""
    from rich.console import Console

    console = console or Console()
    log_path = Path(log_path)
    turns = load_turns(log_path)
    interrupted = sum(bool(turn.get("interrupted")) for turn in turns)
    errors = sum(bool(turn.get("error")) for turn in turns)
    title = f"{log_path.name}: {len(turns)} turns, {interrupted} interrupted, {errors} errors"
    console.print(stage_table(stage_rows(turns), title))
    png = Path(png_path) if png_path else log_path.with_suffix(".png")
    plot_turns(turns, png, title)
    console.print(f"chart written to {png}")
    return png


def main(argv: Sequence[str] | None = None) -> int:
    """`report LOG [--png PNG]`; one line on stderr and exit status 2 for a bad log."""
    parser = argparse.ArgumentParser(prog="main.py report", description="latency summary and chart of a turn log")
    parser.add_argument("log", metavar="TURNS.jsonl", help="a turn log written by the agent")
    parser.add_argument("--png", help="where to write the chart (default: beside the log, .png)")
    args = parser.parse_args(argv)
    try:
        report(args.log, png_path=args.png)
    except (ReportError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _draw_waterfall(ax, turns, labels, audio) -> None:
    for y, turn in enumerate(turns):
        left = 0.0
        for stage in CHAIN:
            width = stage.duration_ms(turn)
            if width is None:
                break  # the turn stopped here (an error, or no reply)
            ax.barh(y, width, left=left, color=STAGE_COLOURS[stage.name], edgecolor="white", linewidth=0.5,
                    label=stage.label if y == 0 else None, hatch="//" if turn.get("interrupted") else None)
            left += width
        committed = _offset_ms(turn, "committed")
        if committed is not None:
            ax.plot([committed, committed], [y - 0.42, y + 0.42], color="black", linewidth=1.2,
                    label="committed" if y == 0 else None)
        for key, marker, colour, name in (("true_end_ms", "D", "black", "speech end (from audio)"),
                                          ("audible_ms", "v", "crimson", "reply audible (from audio)")):
            if audio is not None and audio[y].get(key) is not None:
                ax.plot(audio[y][key], y, marker=marker, color=colour, markersize=6, linestyle="none",
                        label=name)
    ax.set_yticks(range(len(turns)), labels)
    ax.invert_yaxis()  # first turn on top
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("ms after the end of the user's speech")
    ax.set_title("latency waterfall (hatched: interrupted)")
    ax.grid(axis="x", alpha=0.3)
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles))
    ax.legend(unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)


def _draw_histogram(ax, turns, audio) -> None:
    from matplotlib.ticker import MaxNLocator

    logged = [v for v in (VOICE_TO_VOICE.duration_ms(turn) for turn in turns) if v is not None]
    series = [("from the turn log", logged, "#4e79a7")]
    if audio is not None:
        series.append(("from the audio", [a["v2v_audio_ms"] for a in audio if a.get("v2v_audio_ms") is not None],
                       "crimson"))
    values = [v for _, data, _ in series for v in data]
    if not values:
        ax.text(0.5, 0.5, "no reply was played", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    bins = max(10, min(40, 2 * len(values)))
    low, high = min(values), max(values)
    edges = [low + (high - low + 1) * i / bins for i in range(bins + 1)]
    for (name, data, colour), style in zip(series, ({"alpha": 0.6}, {"histtype": "step", "linewidth": 2})):
        ax.hist(data, bins=edges, color=colour, label=f"{name} (n={len(data)})", **style)
    ax.set_xlabel("voice-to-voice, ms")
    ax.set_ylabel("turns")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.grid(alpha=0.3)


def _offset_ms(turn: Mapping, name: str) -> float | None:
    if turn.get(name) is None or turn.get("speech_end") is None:
        return None
    return (turn[name] - turn["speech_end"]) * 1000


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
