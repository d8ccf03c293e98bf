"""Shared fixtures: the real speech clips, and the agent replayed on them."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest_plugins = ["xtts_fixture"]  # the tiny random-weight XTTS checkpoint

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "speech"
NO_SPEECH_CLIPS = ["synthetic_silence_16k_3s.wav", "synthetic_whitenoise_-40dBFS_16k_3s.wav",
                   "derived_lhotse_ES2011a_background_0.0-1.3s.wav"]


@pytest.fixture(scope="session")
def speech_dir() -> Path:
    if not SPEECH.is_dir():
        pytest.fail(f"speech clips not found at {SPEECH}")
    return SPEECH


def write_config(tmp_dir: Path, **overrides) -> Path:
    """config.yaml with dotted-key overrides, e.g. {"llm.max_tokens": 20}."""
    data = yaml.safe_load((ROOT / "config.yaml").read_text())
    data["log"] = {"turns": str(tmp_dir / "turns.jsonl"), "app": str(tmp_dir / "agent.log")}
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path = tmp_dir / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class Replay:
    """The result of replaying one clip through the whole agent in file mode."""

    def __init__(self, clip: Path, out: Path, log: Path):
        import soundfile as sf

        self.clip = clip
        self.turns = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
        self.input, self.in_rate = sf.read(str(clip), dtype="float32", always_2d=True)
        self.output, self.out_rate = sf.read(str(out), dtype="float32")

    def output_rms(self, start_s: float, end_s: float | None = None) -> float:
        a = int(start_s * self.out_rate)
        b = len(self.output) if end_s is None else int(end_s * self.out_rate)
        segment = self.output[a:b]
        return float(np.sqrt(np.mean(segment ** 2))) if segment.size else 0.0


def replay(clip: Path, tmp_dir: Path, simulate_echo: tuple[float, float] | None = None,
           during=None, room_voice=None, **overrides) -> Replay:
    """Replay `clip`; `during(config_path)` is an optional coroutine run alongside (e.g. edits).

    `room_voice` is someone in the room who reacts to the speaker (see benchmarks/scenarios.CutIn).
    """
    from conversation.config import load_config
    from conversation.app.plain import PlainReporter
    from conversation.session import SessionOptions, run_file

    config_path = write_config(tmp_dir, **overrides)
    config = load_config(config_path)
    out, log = tmp_dir / "out.wav", tmp_dir / "turns.jsonl"
    lines: list[str] = []
    options = SessionOptions(config_path=str(config_path) if during else None, log_path=str(log),
                             simulate_echo=simulate_echo, room_voice=room_voice)

    async def main():
        side = asyncio.ensure_future(during(config_path)) if during else None
        try:
            await run_file(config, str(clip), str(out), options, PlainReporter(lines.append))
        finally:
            if side is not None:
                side.cancel()

    asyncio.run(asyncio.wait_for(main(), timeout=240))
    result = Replay(clip, out, log)
    result.console = lines
    return result


@pytest.fixture(scope="session")
def replayed(tmp_path_factory, speech_dir):
    """replayed(name) -> Replay, each clip replayed once per test session."""
    cache: dict[str, Replay] = {}

    def get(name: str) -> Replay:
        if name not in cache:
            cache[name] = replay(speech_dir / name, tmp_path_factory.mktemp(Path(name).stem[:20]))
        return cache[name]

    return get


def spoken(text: str) -> np.ndarray:
    """A person saying `text`, voiced by Piper at 16 kHz (Whisper hears it like any speaker)."""
    import soxr

    from tts.base import SpeechRequest
    from tts.piper import PiperSynthesizer, PiperVoiceSettings

    synthesizer = PiperSynthesizer()
    audio = np.concatenate(list(synthesizer.stream(SpeechRequest(text, PiperVoiceSettings(volume=0.5)))))
    return soxr.resample(audio, synthesizer.sample_rate, 16000).astype(np.float32)
