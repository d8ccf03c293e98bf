"""Smart Turn v3: does the user's voice sound finished? (prosody, not words)

The BSD-2 ONNX model ships inside the `pipecat-ai` wheel; we load the file by
path and never import pipecat. It reads the last 8 s of 16 kHz audio as
Whisper-style log-mel features and returns the probability the turn is over.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .rates import SAMPLE_RATE

WINDOW = 8 * SAMPLE_RATE
MODEL_FILE = "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"


class SmartTurnMissing(Exception):
    pass


def bundled_model_path() -> Path:
    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        raise SmartTurnMissing("the Smart Turn model is missing: pip install --no-deps pipecat-ai "
                               "(or set turn.smart_turn: false)")
    return Path(list(spec.submodule_search_locations)[0]) / MODEL_FILE


class SmartTurn:
    def __init__(self, threads: int = 1):
        self.threads = threads
        self._session = None
        self._features = None

    def load(self) -> None:
        import onnxruntime
        from faster_whisper.feature_extractor import FeatureExtractor

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # don't stall the LLM
        self._session = onnxruntime.InferenceSession(str(bundled_model_path()), sess_options=options,
                                                     providers=["CPUExecutionProvider"])
        self._features = FeatureExtractor(feature_size=80)
        self.probability(np.zeros(SAMPLE_RATE, dtype=np.float32))  # warm-up

    def probability(self, audio: np.ndarray) -> float:
        """P(the turn is complete) for 16 kHz float32 audio ending now."""
        audio = audio[-WINDOW:]
        audio = np.pad(audio, (WINDOW - len(audio), 0))  # the model expects the speech at the end
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)  # as its training front end did
        features = self._features(audio.astype(np.float32), padding=0)[:, :800]
        logits = self._session.run(None, {"input_features": features[None].astype(np.float32)})[0]
        return float(np.ravel(logits)[0])

    def close(self) -> None:
        self._session = None
