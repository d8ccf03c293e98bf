"""Watch config.yaml and apply a saved edit between turns.

Personas, voices, `turn`, `barge_in`, `chunker`, `vad` (but its frame length)
and the LLM's generation settings apply from the next turn. What the session
was built with (devices, the echo canceller, the models, the logs) needs a
restart: an edit that touches it is refused whole, in one line, so the
running session never mixes two configs.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Awaitable, Callable

from .config import Config, ConfigError, load_config
from .reporter import Reporter

POLL_S = 0.5
# Dotted keys (a section, or one key in it) that the running session was built with.
RESTART_ONLY = ("audio", "echo", "stt", "tts", "log", "vad.frame_ms",
                "llm.backend", "llm.model_path", "llm.n_ctx", "llm.n_threads", "llm.n_threads_batch",
                "llm.base_url", "llm.api_key", "llm.timeout_s")


def needs_restart(old: Config, new: Config) -> list[str]:
    """The restart-only keys whose values differ between the two configs."""
    before, after = old.model_dump(), new.model_dump()
    return [key for key in RESTART_ONLY if _get(before, key) != _get(after, key)]


def _get(data: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


async def watch_config(path: str | Path, current: Callable[[], Config], apply: Callable[[Config], Awaitable[None]],
                       idle: Callable[[], bool], reporter: Reporter,
                       adjust: Callable[[Config], Config] = lambda config: config) -> None:
    """Poll the file (and the voices file `voices add` writes); a valid edit is applied when
    `idle()`, a broken one is reported and ignored."""
    path = Path(path)

    def stamp():
        return _stamp(path), _stamp(path.parent / current().voices_file)

    seen = stamp()
    while True:
        await asyncio.sleep(POLL_S)
        stamp_now = stamp()
        if stamp_now == seen:
            continue
        seen = stamp_now
        try:
            config = adjust(load_config(path))  # the command line's settings still hold
        except ConfigError as error:
            reporter.error(f"config not reloaded, keeping the previous settings: {error}")
            continue
        restart = needs_restart(current(), config)
        if restart:
            reporter.error(f"config not reloaded: {', '.join(restart)} only change{'s' if len(restart) == 1 else ''} "
                           "at a restart; restart the agent, or undo that edit to apply the rest")
            continue
        while not idle():
            await asyncio.sleep(0.1)
        await apply(config)
        reporter.info(f"config reloaded from {path}")


def _stamp(path: Path) -> tuple[float, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime, stat.st_size
