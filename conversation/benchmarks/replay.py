"""Replaying recordings through the whole agent in real time, as `main.py --input` does."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CLIPS = ROOT.parent / "shared" / "speech"
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg"}
REPLAY_GRACE_S = 240.0  # model loading plus the longest reply, beyond twice the clip's length


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


@dataclass
class ClipReplay:
    """One clip replayed once: where its output went and what the agent logged."""

    clip: Path
    run: int
    out_wav: Path
    log: Path
    duration_s: float
    wall_s: float
    load_s: float | None  # models constructed and loaded in this process (the first run also imports)
    lines: list[str]
    turns: list[dict]


def replay_clip(config, clip: Path, out_dir: Path, run: int) -> ClipReplay:
    """Replay one clip through the full agent in real time, as `main.py --input` does."""
    from audio_io.files import read_audio

    from ..session import SessionOptions, run_file
    from ..turn_log import read_turns

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
    return ClipReplay(clip, run, out_wav, log, len(audio) / rate, wall,
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
