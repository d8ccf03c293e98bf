"""Where log records go: the app log file, for the agent and the benchmarks alike."""
from __future__ import annotations

import logging


def setup_logging(path: str) -> None:
    """Library chatter goes to a file, never onto the conversation's screen."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
