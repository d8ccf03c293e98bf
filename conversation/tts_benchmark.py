"""`--benchmark tts`: time to first audio and real-time factor of every configured voice."""
from __future__ import annotations

import tempfile
from pathlib import Path

from tts.tts_bench import run_tts_benchmark

from .config import Config


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
    from tts.tts_bench import xtts_benchmark_variants
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
    from tts.xtts_random import build_random_checkpoint
    from tts.xtts_settings import XttsModelSettings, XttsVoice

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
    from tts.base import SpeechRequest
    from tts.piper import PiperSynthesizer, PiperVoiceSettings

    if not path.exists():
        piper = PiperSynthesizer()
        text = "This is a short reference recording, spoken clearly, for cloning a voice."
        audio = np.concatenate(list(piper.stream(SpeechRequest(text, PiperVoiceSettings()))))
        write_wav(path, audio, piper.sample_rate)
    return path
