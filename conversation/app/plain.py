"""`--plain`: the conversation as printed lines, one per event."""
from __future__ import annotations

from ..turn import Turn


def latency_line(record: dict) -> str:
    def gap(a: str, b: str) -> str:
        if record.get(a) is None or record.get(b) is None:
            return "-"
        return f"{(record[b] - record[a]) * 1000:.0f}"

    v2v = record.get("voice_to_voice_ms")
    return (f"voice-to-voice {v2v if v2v is not None else '-'} ms  "
            f"(endpoint {gap('speech_end', 'endpoint')}, stt {gap('endpoint', 'stt_done')}, "
            f"llm {gap('stt_done', 'llm_first_token')}, chunk {gap('llm_first_token', 'first_chunk_ready')}, "
            f"tts {gap('first_chunk_ready', 'tts_first_audio')}, out {gap('tts_first_audio', 'playback_start')})")


class PlainReporter:
    """Line-by-line console output, for pipes, logs and dumb terminals."""

    def __init__(self, print_fn=print):
        self._print = print_fn
        self._listening_shown = False

    def state(self, name: str) -> None:
        # Only the moments a person waits for; every state would bury the transcript.
        if name == "loading models" or (name == "listening" and not self._listening_shown):
            self._print(f"[{name}]")
            self._listening_shown = self._listening_shown or name == "listening"

    def user(self, turn: Turn) -> None:
        self._print(f"you:   {turn.user_text}")

    def agent(self, sentence: str) -> None:
        self._print(f"agent: {sentence}")

    def turn_done(self, record: dict) -> None:
        mark = " [interrupted]" if record.get("interrupted") else ""
        self._print(f"turn {record['turn']}{mark}: {latency_line(record)}")

    def error(self, message: str) -> None:
        self._print(f"error: {message}")

    def info(self, message: str) -> None:
        self._print(message)
