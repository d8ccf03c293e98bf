"""TTS benchmark (`--benchmark tts`): time to first audio and real-time factor.

`run` times every configured voice: Piper always; XTTS with the configured
checkpoint, or a tiny random one on request. `run_tts_benchmark` measures
any Synthesizer, prints a table and writes JSON.
"""
from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tts.base import SpeechRequest, Synthesizer
from tts.xtts_settings import XttsModelSettings

from ..config import Config

DEFAULT_TEXTS: dict[str, str] = {
    "short": "Sure, I can help with that.",
    "medium": "The meeting moved to Thursday at ten, so we still have two days to finish the slides.",
    "long": (
        "When you get to the station, take the second exit, walk past the bakery on the corner, "
        "and you will see the museum entrance just across the small square with the fountain."
    ),
}


@dataclass(frozen=True)
class BenchRun:
    """One synthesis of one text."""

    synthesizer: str
    text: str
    repeat: int
    chars: int
    first_audio_s: float  # wall time until the first non-empty chunk
    audio_s: float  # seconds of audio produced
    wall_s: float  # wall time until the stream ended
    chunks: int

    @property
    def rtf(self) -> float:
        """Real-time factor: synthesis time / audio time (< 1 is faster than real time)."""
        return self.wall_s / self.audio_s if self.audio_s else float("inf")


@dataclass
class BenchSummary:
    synthesizer: str
    text: str
    runs: int
    first_audio_median_s: float
    first_audio_max_s: float
    rtf_median: float
    audio_s: float


@dataclass
class BenchResult:
    runs: list[BenchRun] = field(default_factory=list)
    summaries: list[BenchSummary] = field(default_factory=list)
    # Per synthesizer: what it reports about itself (device, fp16, DeepSpeed...).
    setups: dict[str, dict[str, object]] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "setups": self.setups,
            "summaries": [asdict(summary) for summary in self.summaries],
            "runs": [{**asdict(run), "rtf": run.rtf} for run in self.runs],
        }


def time_one(name: str, synthesizer: Synthesizer, voice: object, text_label: str, text: str, repeat: int,
             first_in_reply: bool = True) -> BenchRun:  # fmt: skip
    started = time.perf_counter()
    first_audio = None
    samples = 0
    chunks = 0
    for chunk in synthesizer.stream(SpeechRequest(text=text, voice=voice, first_in_reply=first_in_reply)):
        if first_audio is None and len(chunk):
            first_audio = time.perf_counter() - started
        samples += len(chunk)
        chunks += 1
    wall = time.perf_counter() - started
    return BenchRun(
        synthesizer=name,
        text=text_label,
        repeat=repeat,
        chars=len(text),
        first_audio_s=wall if first_audio is None else first_audio,
        audio_s=samples / synthesizer.sample_rate,
        wall_s=wall,
        chunks=chunks,
    )


def summarize(runs: list[BenchRun]) -> list[BenchSummary]:
    groups: dict[tuple[str, str], list[BenchRun]] = {}
    for run in runs:
        groups.setdefault((run.synthesizer, run.text), []).append(run)
    return [
        BenchSummary(
            synthesizer=name,
            text=text,
            runs=len(group),
            first_audio_median_s=statistics.median(run.first_audio_s for run in group),
            first_audio_max_s=max(run.first_audio_s for run in group),
            rtf_median=statistics.median(run.rtf for run in group),
            audio_s=statistics.median(run.audio_s for run in group),
        )
        for (name, text), group in groups.items()
    ]


def run_tts_benchmark(
    synthesizers: Mapping[str, tuple[Synthesizer, object]],
    texts: Mapping[str, str] | None = None,
    repeats: int = 3,
    json_path: Path | None = None,
    warmup: bool = True,
    print_table: bool = True,
    load_each: bool = False,
) -> BenchResult:
    """Time every synthesizer on every text `repeats` times.

    `synthesizers` maps a display name to (synthesizer, its voice). With
    `load_each` the benchmark loads each one just before timing it and
    closes it after, so only one model occupies memory at a time; otherwise
    they must be loaded already. One untimed short synthesis per
    synthesizer comes first when `warmup`, so lazy initialisation is not
    billed to the first text.
    """
    texts = dict(DEFAULT_TEXTS if texts is None else texts)
    result = BenchResult()
    for name, (synthesizer, voice) in synthesizers.items():
        if load_each:
            synthesizer.load()
        try:
            describe = getattr(synthesizer, "describe", None)
            result.setups[name] = describe() if callable(describe) else {"sample_rate": synthesizer.sample_rate}
            if warmup:
                time_one(name, synthesizer, voice, "warmup", "Hello.", 0)
            for label, text in texts.items():
                for repeat in range(repeats):
                    result.runs.append(time_one(name, synthesizer, voice, label, text, repeat))
        finally:
            if load_each:
                synthesizer.close()
    result.summaries = summarize(result.runs)
    if print_table:
        print_results(result)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result.to_json(), indent=2))
    return result


def print_results(result: BenchResult) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="TTS benchmark: TTFA = time to first audio, RTF < 1 = faster than real time")
    for column in ("synthesizer", "setup", "text", "runs", "TTFA p50", "TTFA max", "RTF p50", "audio"):
        table.add_column(column, overflow="fold")
    for summary in result.summaries:
        table.add_row(
            summary.synthesizer,
            setup_label(result.setups.get(summary.synthesizer, {})),
            summary.text,
            str(summary.runs),
            f"{summary.first_audio_median_s * 1000:.0f} ms",
            f"{summary.first_audio_max_s * 1000:.0f} ms",
            f"{summary.rtf_median:.2f}",
            f"{summary.audio_s:.1f} s",
        )
    Console().print(table)


def setup_label(setup: Mapping[str, object]) -> str:
    """'cuda fp16 GPT+dec DS' style summary of what a synthesizer reported."""
    parts = [str(setup.get("device", "-"))]
    halves = [name for key, name in (("fp16_gpt", "GPT"), ("fp16_decoder", "dec")) if setup.get(key)]
    if "fp16_gpt" in setup:
        parts.append(f"fp16 {'+'.join(halves)}" if halves else "fp32")
    if setup.get("deepspeed"):
        parts.append("DS")
    return " ".join(parts)


def xtts_benchmark_variants(settings: XttsModelSettings, cuda: bool) -> dict[str, XttsModelSettings]:
    """Settings for fp16 and DeepSpeed on/off on CUDA (one float32 setup on the CPU).

    DeepSpeed runs the GPT in fp16 whatever `fp16_gpt` says; each loaded
    synthesizer's `describe()` reports what was really active. Pass them to
    run_tts_benchmark(..., load_each=True) so one model is in VRAM at a time.
    """
    if not cuda:
        return {"xtts": settings.model_copy(update={"fp16_gpt": False, "fp16_decoder": False, "use_deepspeed": False})}
    variants = {}
    for fp16 in (False, True):
        for deepspeed in (False, True):
            name = f"xtts fp16={'on' if fp16 else 'off'} ds={'on' if deepspeed else 'off'}"
            variants[name] = settings.model_copy(
                update={"fp16_gpt": fp16, "fp16_decoder": fp16, "use_deepspeed": deepspeed, "device": "cuda"}
            )
    return variants


# --- the configured voices --------------------------------------------------

def run(config: Config, out_dir: Path, tiny_xtts: bool, notify=print) -> None:
    """Piper always; XTTS with the configured checkpoint, or a tiny random one on request."""
    from tts.piper import PiperSynthesizer

    synthesizers: dict = {}
    for name, voice in config.voices.items():
        if voice.backend == "piper":
            synthesizers[f"piper:{name}"] = (PiperSynthesizer(config.tts.piper_threads), voice)
    xtts_voices = {name: v for name, v in config.voices.items() if v.backend == "xtts"}
    if config.tts.xtts is not None and xtts_voices:
        # On CUDA, every fp16 x DeepSpeed combination, one model in VRAM at a time.
        synthesizers.update(_xtts(config.tts.xtts, xtts_voices))
    if tiny_xtts:
        synthesizers.update(_tiny_xtts(out_dir))
    if len(synthesizers) == len([n for n in synthesizers if n.startswith("piper")]) and not tiny_xtts:
        notify("no XTTS voice is configured: timing Piper only (add --bench-tiny-xtts for the random-weight model)")
    out_dir.mkdir(parents=True, exist_ok=True)
    run_tts_benchmark(synthesizers, json_path=out_dir / "tts.json", load_each=True)


def _xtts(settings, voices: dict) -> dict:
    from tts.xtts import XttsSynthesizer

    try:
        import torch

        cuda = settings.device != "cpu" and torch.cuda.is_available()
    except ImportError:
        cuda = False
    return {f"{variant}:{name}": (XttsSynthesizer(variant_settings), voice)
            for variant, variant_settings in xtts_benchmark_variants(settings, cuda).items()
            for name, voice in voices.items()}


def _tiny_xtts(out_dir: Path) -> dict:
    """XTTS code paths with random weights: speed of the mechanics, not of the real model."""
    from tts.xtts import XttsSynthesizer
    from tts.xtts_settings import XttsVoice

    from .random_xtts import build_random_checkpoint

    checkpoint = out_dir / "xtts-tiny"
    if not (checkpoint / "model.pth").exists():
        build_random_checkpoint(checkpoint, "tiny")
    reference = _reference_clip(out_dir / "reference.wav")
    settings = XttsModelSettings(checkpoint_dir=checkpoint, cache_dir=Path(tempfile.mkdtemp()), max_audio_tokens=61)
    voice = XttsVoice(references=[reference], gpt_cond_len=6, gpt_cond_chunk_len=6)
    return {"xtts:tiny-random (cpu)": (XttsSynthesizer(settings), voice)}


def _reference_clip(path: Path) -> Path:
    """A few seconds of speech to clone, spoken by the bundled Piper voice."""
    import numpy as np

    from audio_io.files import write_wav
    from tts.piper import PiperSynthesizer, PiperVoiceSettings

    if not path.exists():
        piper = PiperSynthesizer()
        text = "This is a short reference recording, spoken clearly, for cloning a voice."
        audio = np.concatenate(list(piper.stream(SpeechRequest(text, PiperVoiceSettings()))))
        write_wav(path, audio, piper.sample_rate)
    return path
