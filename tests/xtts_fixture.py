"""The tiny random-weight XTTS checkpoint the tests build once per session."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def xtts_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random XTTS v2 checkpoint directory, built once per test session."""
    pytest.importorskip("TTS.tts.models.xtts", reason="coqui-tts is not installed")
    from conversation.benchmarks.random_xtts import build_random_checkpoint

    return build_random_checkpoint(tmp_path_factory.mktemp("xtts") / "tiny")
