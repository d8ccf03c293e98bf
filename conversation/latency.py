"""The latency stages of a turn record: what each stage of a turn's delay means.

Defined once, here in the core, so the live view, the report and the
benchmarks all give the same number the same name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class Stage:
    """A stretch of a turn: from the latest of `start` to the latest of `end` (turn-log fields)."""

    name: str
    label: str
    start: tuple[str, ...]
    end: tuple[str, ...]

    def duration_ms(self, record: Mapping) -> float | None:
        start, end = _latest(record, self.start), _latest(record, self.end)
        if start is None or end is None:
            return None
        return round((end - start) * 1000, 1)


# One after the other, from the end of the user's speech to the first reply
# sample played: they add up to voice-to-voice. `commit hold` is the time a
# ready reply waited for the turn to be known over.
CHAIN = (
    Stage("endpoint_wait", "endpoint wait", ("speech_end",), ("endpoint",)),
    Stage("stt", "STT", ("endpoint",), ("stt_done",)),
    Stage("llm_first_token", "LLM first token", ("stt_done",), ("llm_first_token",)),
    Stage("first_chunk", "first speakable chunk", ("llm_first_token",), ("first_chunk_ready",)),
    Stage("tts_first_audio", "TTS first audio", ("first_chunk_ready",), ("tts_first_audio",)),
    Stage("commit_hold", "commit hold", ("tts_first_audio",), ("tts_first_audio", "committed")),
    Stage("output", "output latency", ("tts_first_audio", "committed"), ("playback_start",)),
)
COMMIT_WAIT = Stage("commit_wait", "commit wait", ("speech_end",), ("committed",))
VOICE_TO_VOICE = Stage("voice_to_voice", "voice-to-voice", ("speech_end",), ("playback_start",))
STAGES = (*CHAIN, COMMIT_WAIT, VOICE_TO_VOICE)  # table order


def stage_durations_ms(record: Mapping) -> dict[str, float | None]:
    """Every stage of one turn record, in milliseconds (None where a time is missing)."""
    return {stage.name: stage.duration_ms(record) for stage in STAGES}


def _latest(record: Mapping, fields: tuple[str, ...]) -> float | None:
    values = [record.get(name) for name in fields]
    return None if any(v is None for v in values) else max(values)
