"""The live terminal view: who is talking, what was said, how fast the reply came.

`LiveView` is a Reporter. The agent's calls only change a little state under a
lock (cheap, from any thread or the asyncio loop); rich's own refresh thread
draws it about eight times a second. Use it as a context manager, so the
terminal is always given back, also on Ctrl-C:

    with LiveView(stderr_log="agent.log") as view:
        asyncio.run(run_live(config, options, view))
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from ..latency import CHAIN

log = logging.getLogger(__name__)

STATE_COLOURS = {
    "loading models": "magenta",
    "listening": "green",
    "hearing you": "cyan",
    "thinking": "yellow",
    "speaking": "blue",
    "interrupted": "red",
}
STAGE_COLOURS = ("grey50", "cyan", "yellow", "bright_yellow", "magenta", "grey37", "blue")
SHORT_LABELS = {"endpoint_wait": "endpoint", "stt": "stt", "llm_first_token": "llm", "first_chunk": "chunk",
                "tts_first_audio": "tts", "commit_hold": "hold", "output": "out"}
DEFAULT_KEYS = (("p", "next persona"), ("v", "next voice"), ("?", "help"), ("q", "quit"))
HELP_LINES = (
    ("p", "talk to the next persona (the conversation so far is kept)"),
    ("v", "speak with the next voice"),
    ("q", "quit; Ctrl-C works too"),
    ("?", "hide this help"),
    ("", 'or say "switch to <persona>" / "use the <voice> voice"'),
    ("", "talk over the agent to interrupt it"),
)
BAR_WIDTH = 48
MAX_LINE_CHARS = 400  # one entry of the transcript, however long the reply


@dataclass
class _Line:
    who: str  # "you" or "agent"
    text: str
    open: bool = True  # more sentences of this reply may follow
    interrupted: bool = False


@dataclass
class _Status:
    text: str
    style: str
    shown_at: float
    lifetime: float


@dataclass
class _Load:
    spinner: Spinner
    started: float
    finished: float | None = None


class LiveView:
    """A Reporter that draws the conversation in place, in a terminal."""

    def __init__(self, console: Console | None = None, *, keys: Sequence[tuple[str, str]] = DEFAULT_KEYS,
                 transcript_lines: int = 8, refresh_per_second: float = 8, info_seconds: float = 4.0,
                 error_seconds: float = 8.0, stderr_log: str | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.console = console or Console()
        self._keys = tuple(keys)
        self._clock = clock
        self._info_seconds, self._error_seconds = info_seconds, error_seconds
        self._lock = threading.RLock()
        self.history: deque[str] = deque(maxlen=256)  # the states shown, in order, repeats folded
        self._state = ""
        self._lines: deque[_Line] = deque(maxlen=transcript_lines)
        self._persona = self._voice = ""
        self._source: Callable[[], tuple[str, str]] | None = None
        self._last_turn: Mapping | None = None
        self._recent_v2v: deque[int] = deque(maxlen=6)
        self._status: _Status | None = None
        self._loads: dict[str, _Load] = {}
        self._help = False
        self._stderr = _StderrToFile(stderr_log) if stderr_log else None
        # With fd 2 sent to the log, sys.stderr goes there too; otherwise rich prints it above the view.
        self._live = Live(console=self.console, get_renderable=self.render, refresh_per_second=refresh_per_second,
                          transient=False, auto_refresh=True, redirect_stderr=self._stderr is None)

    # --- lifetime ------------------------------------------------------------
    def __enter__(self) -> LiveView:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        if self._stderr is not None:
            self._stderr.start()
        try:
            self._live.start()
        except BaseException:
            if self._stderr is not None:
                self._stderr.stop()
            raise

    def stop(self) -> None:
        """Draw the last frame and give the terminal back."""
        try:
            self._live.stop()
        finally:
            if self._stderr is not None:
                self._stderr.stop()

    # --- the Reporter protocol -------------------------------------------------
    def state(self, name: str) -> None:
        with self._lock:
            if name != self._state:
                self._state = name
                self.history.append(name)
            if name != "loading models" and all(load.finished is not None for load in self._loads.values()):
                self._loads.clear()  # the models are in: the list has done its job

    def user(self, turn) -> None:
        with self._lock:
            if self._source is None:  # no agent to follow: the turn says who answered
                self._persona, self._voice = turn.persona, turn.voice
            self._close_reply()
            self._lines.append(_Line("you", _tail(turn.user_text), open=False))

    def agent(self, sentence: str) -> None:
        with self._lock:
            last = self._lines[-1] if self._lines else None
            if last is not None and last.who == "agent" and last.open:
                last.text = _tail(f"{last.text} {sentence}")
            else:
                self._lines.append(_Line("agent", _tail(sentence)))

    def turn_done(self, record: dict) -> None:
        with self._lock:
            if record.get("interrupted") and self._lines and self._lines[-1].who == "agent":
                self._lines[-1].interrupted = True
            self._close_reply()
            self._last_turn = dict(record)
            if record.get("voice_to_voice_ms") is not None:
                self._recent_v2v.append(record["voice_to_voice_ms"])

    def error(self, message: str) -> None:
        self._show(message, "bold red", self._error_seconds)

    def info(self, message: str) -> None:
        self._show(message, "cyan", self._info_seconds)

    # --- what the session tells it besides ------------------------------------
    def set_persona(self, persona: str, voice: str) -> None:
        with self._lock:
            self._persona, self._voice = persona, voice

    def follow(self, source: Callable[[], tuple[str, str]]) -> None:
        """Read (persona, voice) from `source` at every frame, e.g. from the running agent.

        It runs on rich's refresh thread, so it must only read attributes."""
        with self._lock:
            self._source = source

    def toggle_help(self) -> None:
        with self._lock:
            self._help = not self._help

    def load_started(self, name: str) -> None:
        with self._lock:
            self._loads[name] = _Load(Spinner("dots", style="magenta"), self._clock())

    def load_finished(self, name: str) -> None:
        with self._lock:
            if name in self._loads:
                self._loads[name].finished = self._clock()

    # --- drawing -------------------------------------------------------------
    def render(self) -> RenderableType:
        """One frame (rich's refresh thread calls this; so can a test)."""
        try:
            with self._lock:
                now = self._clock()
                parts = [self._header()]
                if self._loads:
                    parts.append(self._loading(now))
                parts.append(self._transcript())
                if self._last_turn is not None:
                    parts.append(self._latency(self._last_turn))
                parts.append(self._status_line(now))
                parts.append(self._help_table() if self._help else self._footer())
                return Group(*parts)
        except Exception:  # a drawing bug must not kill the refresh thread, nor print a traceback
            log.exception("live view render failed")
            return Text(f"[{self._state}]")

    def _header(self) -> Panel:
        persona, voice = self._persona_and_voice()
        colour = STATE_COLOURS.get(self._state, "white")
        who = Text.assemble(("persona ", "dim"), (persona or "-", "bold"), ("   voice ", "dim"), (voice or "-", "bold"))
        badge = Text(f" {self._state or 'starting'} ", style=f"bold black on {colour}")
        grid = Table.grid(expand=True)
        grid.add_column(ratio=1)
        grid.add_column(no_wrap=True)  # sized to the badge, so it sits flush right
        grid.add_row(who, badge)
        return Panel(grid, title="voice agent", title_align="left", border_style=colour)

    def _persona_and_voice(self) -> tuple[str, str]:
        if self._source is not None:
            try:
                self._persona, self._voice = self._source()
            except Exception:  # e.g. mid config reload: keep the last names
                pass
        return self._persona, self._voice

    def _loading(self, now: float) -> Table:
        table = Table.grid(padding=(0, 1))
        for name, load in self._loads.items():
            if load.finished is None:
                table.add_row(load.spinner, Text(name), Text(f"{now - load.started:.1f}s", style="dim"))
            else:
                table.add_row(Text("ok", style="green"), Text(name, style="dim"),
                              Text(f"{load.finished - load.started:.1f}s", style="dim"))
        return table

    def _transcript(self) -> RenderableType:
        if not self._lines:
            return Text("  say something...", style="dim italic")
        table = Table.grid(padding=(0, 1))
        table.add_column(width=6, no_wrap=True)
        table.add_column(overflow="fold")
        for line in self._lines:
            text = Text(line.text)
            if line.interrupted:
                text.append("  [cut off]", style="dim red")
            style = "bold green" if line.who == "you" else "bold blue"
            table.add_row(Text(f"{line.who}:", style=style), text)
        return table

    def _latency(self, record: Mapping) -> RenderableType:
        v2v = record.get("voice_to_voice_ms")
        title = Text.assemble(("last turn  ", "dim"), ("voice-to-voice ", "bold"),
                              (f"{v2v} ms" if v2v is not None else "-", "bold"))
        if record.get("interrupted"):
            title.append("  (interrupted)", style="red")
        if len(self._recent_v2v) > 1:
            title.append(f"   recent: {' '.join(str(v) for v in self._recent_v2v)} ms", style="dim")
        stages = [(stage, stage.duration_ms(record)) for stage in CHAIN]
        stages = [(stage, ms, colour) for (stage, ms), colour in zip(stages, STAGE_COLOURS) if ms is not None]
        legend = Text()
        for stage, ms, colour in stages:
            if legend:
                legend.append("  ")
            legend.append(SHORT_LABELS.get(stage.name, stage.label), style=colour)
            legend.append(f" {ms:.0f}")
        return Group(title, latency_bar([(ms, colour) for _, ms, colour in stages]), legend)

    def _status_line(self, now: float) -> Text:
        status = self._status
        if status is None or now - status.shown_at > status.lifetime:
            return Text("")
        # Fades: full colour at first, dim towards the end, then gone.
        style = status.style if now - status.shown_at < status.lifetime * 0.6 else f"dim {status.style}"
        return Text(status.text, style=style, no_wrap=True, overflow="ellipsis")

    def _footer(self) -> Text:
        footer = Text(style="dim")
        for key, what in self._keys:
            footer.append(key, style="bold")
            footer.append(f" {what}   ")
        footer.append("Ctrl-C stops")
        return footer

    def _help_table(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column(style="dim")
        for key, what in HELP_LINES:
            table.add_row(key, what)
        return table

    # --- helpers -------------------------------------------------------------
    def _show(self, message: str, style: str, lifetime: float) -> None:
        first_line = message.strip().splitlines()[0] if message.strip() else ""
        with self._lock:
            self._status = _Status(first_line, style, self._clock(), lifetime)

    def _close_reply(self) -> None:
        if self._lines and self._lines[-1].who == "agent":
            self._lines[-1].open = False


def latency_bar(segments: Sequence[tuple[float, str]], width: int = BAR_WIDTH) -> Text:
    """One bar, each (milliseconds, colour) segment as wide as its share of the total."""
    total = sum(ms for ms, _ in segments)
    bar = Text()
    if total <= 0:
        return bar
    done_ms, done_cells = 0.0, 0
    for ms, colour in segments:
        done_ms += ms
        cells = round(done_ms / total * width) - done_cells  # cumulative, so the bar is exactly `width`
        bar.append("█" * cells, style=colour)
        done_cells += cells
    return bar


def _tail(text: str) -> str:
    """The end of an over-long text: what was said last matters most."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_LINE_CHARS else "..." + text[-(MAX_LINE_CHARS - 3):]


class _StderrToFile:
    """Sends file descriptor 2 to a file: C libraries (ALSA, llama.cpp) write there, past Python."""

    def __init__(self, path: str):
        self.path = path
        self._saved: int | None = None

    def start(self) -> None:
        sys.stderr.flush()
        self._saved = os.dup(2)
        with open(self.path, "ab") as target:
            os.dup2(target.fileno(), 2)

    def stop(self) -> None:
        if self._saved is None:
            return
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._saved = None
