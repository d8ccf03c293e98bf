"""Stand-ins for the three models, for the fast layer of Agent tests.

Each one implements its stage's real interface (stt/base.py, llm/base.py,
tts/base.py), answers instantly on the wall clock and records what it was
asked. The user's "voice" in these tests is a harmonic buzz (webrtcvad hears
it as speech) whose peak level tags the utterance, so the fake transcriber
can tell which scripted words were said, and in which order.
"""
from __future__ import annotations

import asyncio
import threading
from typing import AsyncIterator, Iterator

import numpy as np

from llm.base import Generation, LlmError, Message
from stt.base import Transcript
from tts.base import SpeechRequest

RATE = 16000
TAG_STEP = 0.05  # tag k speaks at a peak level of (k + 2) * TAG_STEP
NOISE = 0  # the tag of a sound that has no words (a cough, a door)


def voice(tag: int, seconds: float) -> np.ndarray:
    """A buzz with a 150 Hz pitch whose peak level is the tag's."""
    t = np.arange(int(seconds * RATE)) / RATE
    buzz = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
    return ((tag + 2) * TAG_STEP * buzz / np.max(np.abs(buzz))).astype(np.float32)


def tags_in(audio: np.ndarray, window: int = RATE // 50) -> list[int]:
    """The tags voiced in the audio, in order of first appearance."""
    found: list[int] = []
    for start in range(0, len(audio) - window + 1, window):
        peak = float(np.max(np.abs(audio[start:start + window])))
        if peak >= 1.5 * TAG_STEP:
            tag = round(peak / TAG_STEP) - 2
            if tag not in found:
                found.append(tag)
    return found


class FakeTranscriber:
    """Hears the tags in an utterance and returns their scripted words."""

    def __init__(self, words: dict[int, str]):
        self.words = {NOISE: "", **words}
        self.heard: list[list[int]] = []

    def load(self) -> None:
        pass

    def transcribe(self, audio: np.ndarray) -> Transcript:
        tags = tags_in(audio)
        self.heard.append(tags)
        return Transcript(" ".join(self.words[tag] for tag in tags if self.words[tag]), "en")

    def close(self) -> None:
        pass


class FakeChat:
    """Streams scripted replies word by word on the event loop's clock.

    `replies` are used in order (the last one repeats); an LlmError instance
    among them fails that request after its first word.
    """

    def __init__(self, *replies: str | LlmError, first_token_s: float = 0.1, token_s: float = 0.02):
        self.replies = list(replies) or ["Sure."]
        self.first_token_s = first_token_s
        self.token_s = token_s
        self.requests: list[list[Message]] = []
        self.finished = 0  # streams that ran to their end
        self.closed_early = 0  # streams closed by the agent before their end
        self.warmed: list[list[Message]] = []

    def load(self) -> None:
        pass

    def describe(self) -> str:
        return "a scripted fake"

    async def warm(self, messages: list[Message]) -> None:
        self.warmed.append(messages)

    async def stream(self, messages: list[Message], generation: Generation) -> AsyncIterator[str]:
        reply = self.replies[min(len(self.requests), len(self.replies) - 1)]
        self.requests.append(messages)
        done = False
        try:
            await asyncio.sleep(self.first_token_s)
            words = ["Well,"] if isinstance(reply, LlmError) else reply.split()
            for index, word in enumerate(words):
                if index:
                    await asyncio.sleep(self.token_s)
                yield ("" if index == 0 else " ") + word
            if isinstance(reply, LlmError):
                raise reply
            done = True
        finally:
            if done:
                self.finished += 1
            else:
                self.closed_early += 1

    async def aclose(self) -> None:
        pass


class FakeSynthesizer:
    """0.25 s of quiet tone per word, in 0.1 s chunks.

    A sentence in `stall_on` doesn't finish until the reply is cancelled, like
    a synthesizer slower than the LLM.
    """

    sample_rate = RATE
    SECONDS_PER_WORD = 0.25
    CHUNK_S = 0.1

    def __init__(self, stall_on: tuple[str, ...] = ()):
        self.stall_on = stall_on
        self.requests: list[SpeechRequest] = []
        self.prepared: list[object] = []
        self._lock = threading.Lock()

    def load(self) -> None:
        pass

    def prepare_voice(self, voice: object) -> None:
        self.prepared.append(voice)

    def stream(self, request: SpeechRequest) -> Iterator[np.ndarray]:
        with self._lock:
            self.requests.append(request)
        if request.text in self.stall_on:
            request.cancel.wait(10.0)
            return
        seconds = self.SECONDS_PER_WORD * max(1, len(request.text.split()))
        t = np.arange(int(seconds * RATE)) / RATE
        audio = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        step = int(self.CHUNK_S * RATE)
        for start in range(0, len(audio), step):
            if request.cancel.is_set():
                return
            yield audio[start:start + step]

    def release_memory(self) -> None:
        pass

    def close(self) -> None:
        pass


class FakeSmartTurn:
    """Says the voice sounds finished with a fixed probability."""

    def __init__(self, probability: float = 0.9):
        self.probability_value = probability
        self.loaded = False
        self.on_call = lambda: None  # a test's probe: what else had happened when the voice was judged

    def load(self) -> None:
        self.loaded = True

    def probability(self, audio: np.ndarray) -> float:
        self.on_call()
        return self.probability_value

    def close(self) -> None:
        pass


class RecordingReporter:
    """Keeps what a person would have been shown."""

    def __init__(self):
        self.states: list[str] = []
        self.users: list[str] = []
        self.spoken: list[str] = []
        self.errors: list[str] = []
        self.infos: list[str] = []
        self.records: list[dict] = []

    def state(self, name: str) -> None:
        self.states.append(name)

    def user(self, turn) -> None:
        self.users.append(turn.user_text)

    def agent(self, sentence: str) -> None:
        self.spoken.append(sentence)

    def turn_done(self, record: dict) -> None:
        self.records.append(record)

    def error(self, message: str) -> None:
        self.errors.append(message)

    def info(self, message: str) -> None:
        self.infos.append(message)
