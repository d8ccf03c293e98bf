"""Loading XTTS: the checkpoint check, the errors that make XTTS unavailable, and the model's set-up.

Only what runs once per model lives here; tts/xtts.py synthesizes with it.
torch and coqui-tts are imported inside the functions, after
`import_torch_backend()` has checked they are installed.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger("tts.xtts")  # the same logger as tts/xtts.py: one for all of XTTS

REQUIRED_FILES = ("config.json", "model.pth", "vocab.json")
WEIGHTS_HINT = (
    "get config.json, model.pth and vocab.json (speakers_xtts.pth optional) from Coqui's XTTS-v2 "
    "release on Hugging Face (coqui/XTTS-v2); the weights are under the Coqui Public Model License, "
    "non-commercial use only"
)


class XttsUnavailableError(RuntimeError):
    """XTTS cannot run here; the caller may fall back to another backend."""


class XttsModelMissing(XttsUnavailableError):
    """The checkpoint directory or one of its files is missing."""


class XttsNotInstalledError(XttsUnavailableError):
    """torch or coqui-tts is not installed."""


@dataclass(frozen=True)
class XttsRuntime:
    """What is really active after `load()`, for logs and benchmarks."""

    device: str
    fp16_gpt: bool
    fp16_decoder: bool
    deepspeed: bool
    kv_cache: bool
    max_audio_tokens: int


def check_checkpoint(checkpoint_dir: Path) -> None:
    """Raise XttsModelMissing unless the directory holds the required files."""
    if not checkpoint_dir.is_dir():
        raise XttsModelMissing(f"XTTS checkpoint directory {checkpoint_dir} not found: {WEIGHTS_HINT}")
    missing = [name for name in REQUIRED_FILES if not (checkpoint_dir / name).is_file()]
    if missing:
        raise XttsModelMissing(f"XTTS checkpoint {checkpoint_dir} lacks {', '.join(missing)}: {WEIGHTS_HINT}")


# ---- torch (imported only once load() has checked it is installed) -------
def import_torch_backend() -> Any:
    try:
        import torch
        import TTS.tts.models.xtts  # noqa: F401  (fails early if coqui-tts is broken)
    except ImportError as error:
        raise XttsNotInstalledError(
            f"XTTS needs torch and coqui-tts ({error.name or error} is missing): install the project's xtts extra"
        ) from None
    return torch


def load_model(checkpoint_dir: Path, use_deepspeed: bool) -> tuple[Any, bool]:
    """Build Xtts from config.json and load weights; retry without DeepSpeed if it fails."""
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    config = XttsConfig()
    config.load_json(str(checkpoint_dir / "config.json"))
    config.model_args.kv_cache = True
    model = Xtts(config)
    try:
        model.load_checkpoint(config, checkpoint_dir=str(checkpoint_dir), eval=True, use_deepspeed=use_deepspeed)
    except Exception as error:  # noqa: BLE001  DeepSpeed fails in many ways; fp16 still works
        if not use_deepspeed:
            raise
        logger.warning("XTTS: DeepSpeed failed (%s); loading without it", str(error).splitlines()[0])
        return load_model(checkpoint_dir, use_deepspeed=False)
    return model, use_deepspeed


def gpt_to_half(model: Any) -> None:
    """Turn the autoregressive GPT (not its conditioning encoders) to fp16.

    The same modules DeepSpeed halves. XTTS replaces GPT-2's position table
    with a function returning float32 zeros, which would promote every hidden
    state back to float32, so it is replaced with one returning fp16 zeros.
    """
    import torch

    model.gpt.gpt_inference.half()
    model.gpt.gpt.wpe = functools.partial(_null_positions, dim=model.gpt.model_dim, dtype=torch.float16)


def _null_positions(position_ids: Any, dim: int, dtype: Any) -> Any:
    import torch

    return torch.zeros((*position_ids.shape, dim), dtype=dtype, device=position_ids.device)


def cast_to_own_dtype(module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    import torch

    dtype = next(module.parameters()).dtype

    def cast(value: Any) -> Any:
        return value.to(dtype) if torch.is_tensor(value) and value.is_floating_point() else value

    return tuple(cast(arg) for arg in args), {name: cast(value) for name, value in kwargs.items()}
