"""Which synthesizer a voice's backend asks for."""
from __future__ import annotations

from .base import Synthesizer
from .settings import TtsSettings
from .xtts_loading import XttsUnavailableError

# A backend that cannot run here (no checkpoint, no torch): the caller may fall back to Piper.
BackendUnavailable = XttsUnavailableError


def make_synthesizer(backend: str, settings: TtsSettings) -> Synthesizer:
    if backend == "xtts":
        if settings.xtts is None:
            raise BackendUnavailable("it uses XTTS, but tts.xtts.checkpoint_dir is not set in the config")
        from .xtts import XttsSynthesizer

        return XttsSynthesizer(settings.xtts)
    from .piper import PiperSynthesizer

    return PiperSynthesizer(settings.piper_threads)
