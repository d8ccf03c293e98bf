"""The agent as text mode runs it (typed turns, spoken replies), without a sound card.

`typed_agent(config)` is the real session (`running_agent`: every model from
the config, loaded and warm) with one stand-in: the speaker, which plays the
agent's audio faster than real time so a spoken reply takes seconds, not its
length. The LLM's pieces are noted as they arrive (`StreamLog`), passed on
unchanged. Turns are typed with `agent.on_text(...)`, as `--text` does.
"""
from __future__ import annotations

import asyncio
import time
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from typing import Callable

from audio_io.clock import InputClock
from audio_io.player import Player
from conversation.models import Models
from conversation.session import SessionOptions, running_agent
from fakes import RecordingReporter

RATE = 16000
BLOCK_S = 0.02
SPEEDUP = 5  # seconds of audio the stand-in speaker plays per second


@dataclass
class Reply:
    """One LLM stream as the agent read it: each piece and when it arrived (time.monotonic())."""
    pieces: list[tuple[float, str]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(piece for _, piece in self.pieces)


class StreamLog:
    """A chat model, passed through, noting each reply's pieces as the agent reads them."""

    def __init__(self, chat):
        self._chat = chat
        self.replies: list[Reply] = []

    def __getattr__(self, name):
        return getattr(self._chat, name)

    async def stream(self, messages, generation):
        reply = Reply()
        self.replies.append(reply)
        async with aclosing(self._chat.stream(messages, generation)) as pieces:  # a close reaches the server
            async for piece in pieces:
                reply.pieces.append((time.monotonic(), piece))
                yield piece


def models_with_stream_log(config, notify) -> Models:
    models = Models.from_config(config, notify)
    models.chat = StreamLog(models.chat)
    return models


async def play(player: Player, clock: InputClock) -> None:
    """The speaker: reads the player block by block on the input timeline, SPEEDUP times real time."""
    block, t = int(RATE * BLOCK_S), 0.0
    while True:
        clock.tick(t)
        player.read(block, t)
        t += BLOCK_S
        await asyncio.sleep(BLOCK_S / SPEEDUP)


@asynccontextmanager
async def typed_agent(config, reporter: RecordingReporter | None = None):
    """(agent, reporter, stream log), for as long as the block runs; everything stopped afterwards."""
    reporter = reporter or RecordingReporter()
    clock = InputClock()
    options = SessionOptions(make_models=models_with_stream_log)
    async with running_agent(config, options, reporter, RATE, clock) as agent:
        speaker = asyncio.ensure_future(play(agent.player, clock))
        try:
            yield agent, reporter, agent.models.chat
        finally:
            speaker.cancel()
            await asyncio.gather(speaker, return_exceptions=True)


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Wait for `condition`, checking every 20 ms; fail with `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:g} s")
        await asyncio.sleep(0.02)
