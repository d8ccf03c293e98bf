"""Watch config.yaml and apply a saved edit between turns."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Callable

from .config import Config, ConfigError, load_config
from .reporter import Reporter

POLL_S = 0.5


async def watch_config(path: str | Path, apply: Callable[[Config], None], idle: Callable[[], bool],
                       reporter: Reporter) -> None:
    """Poll the file; a valid edit is applied when `idle()`, a broken one is reported and ignored."""
    path = Path(path)
    seen = _stamp(path)
    while True:
        await asyncio.sleep(POLL_S)
        stamp = _stamp(path)
        if stamp == seen:
            continue
        seen = stamp
        try:
            config = load_config(path)
        except ConfigError as error:
            reporter.error(f"config not reloaded, keeping the previous settings: {error}")
            continue
        while not idle():
            await asyncio.sleep(0.1)
        apply(config)
        reporter.info(f"config reloaded from {path}")


def _stamp(path: Path) -> tuple[float, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime, stat.st_size
