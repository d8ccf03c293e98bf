"""The Agent on a virtual clock with fake models: a conversation in milliseconds.

A script of `Say` and `Wait` steps becomes the microphone signal; it is fed
frame by frame on the input timeline while the player is read for the same
block, just as the file-mode duplex does. Everything but the three models is
the real thing: the endpointer, the agent, the player, the turn log.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audio_io.player import Player
from conversation.agent import Agent
from conversation.config import Config, load_config
from conversation.models import Models
from conversation.turn_log import TurnLog, read_turns
from conftest import write_config
from virtual_time import run
from fakes import RATE, FakeChat, FakeSmartTurn, FakeSynthesizer, FakeTranscriber, RecordingReporter, voice

ECHO_GATE_S = 0.5  # how long after the speaker's sound a cold canceller's gate stays shut
SETTLE_S = 20.0  # the longest the harness waits for the agent to go quiet after the script


@dataclass(frozen=True)
class Say:
    tag: int
    seconds: float


@dataclass(frozen=True)
class Wait:
    seconds: float


class LoopClock:
    """The input timeline is the virtual loop's time since the start."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()

    def now(self) -> float:
        return self._loop.time() - self._start


@dataclass
class Harness:
    config: Config
    transcriber: FakeTranscriber
    chat: FakeChat
    synthesizer: FakeSynthesizer
    smart_turn: FakeSmartTurn
    reporter: RecordingReporter
    log_path: Path
    agent: Agent | None = None
    output: list[np.ndarray] = field(default_factory=list)
    started: list = field(default_factory=list)  # every turn the agent started, speculative ones too
    leftover: list = field(default_factory=list)  # tasks still pending after the close

    def start(self) -> Agent:
        """Build the agent; call inside the virtual loop."""
        models = Models(self.transcriber, self.chat, make_synthesizer=lambda backend: self.synthesizer,
                        make_smart_turn=lambda: self.smart_turn, fallback_to_piper=True, notify=self.reporter.error)
        self.clock = LoopClock()
        self.player = Player(RATE)
        self.agent = Agent(self.config, models, self.player, self.clock, self.reporter, TurnLog(self.log_path))
        return self.agent

    async def load(self) -> None:
        await self.agent.models.load(self.config, [self.agent.voice_name])
        await self.agent.prepare()

    def script(self, *steps: Say | Wait) -> np.ndarray:
        pieces = [voice(step.tag, step.seconds) if isinstance(step, Say) else np.zeros(int(step.seconds * RATE),
                  dtype=np.float32) for step in steps]
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)

    async def talk(self, *steps: Say | Wait, during=None, cold_echo_gate: bool = False) -> None:
        """Feed the script as the microphone, then silence until the agent is done.

        `during(t)` is called before each frame: a test's hand on the agent at a moment.
        With `cold_echo_gate`, every frame within half a second of the speaker's sound is
        marked as maybe echo, as by a canceller that has not converged.
        """
        mic = self.script(*steps)
        frame_len = self.agent.endpointer.frame_len

        async def frames():
            index, last_sound = 0, -1.0
            while True:
                t = index * frame_len / RATE
                if index * frame_len >= len(mic) and (not self.agent.busy or t > len(mic) / RATE + SETTLE_S):
                    return
                await asyncio.sleep(max(0.0, t - self.clock.now()))
                if during is not None:
                    during(t)
                frame = mic[index * frame_len:(index + 1) * frame_len]
                frame = np.pad(frame, (0, frame_len - len(frame)))
                self.output.append(self.player.read(frame_len, t))
                if np.max(np.abs(self.output[-1])) > 0.01:
                    last_sound = t
                index += 1
                yield frame, t, cold_echo_gate and t - last_sound < ECHO_GATE_S

        await self.agent.listen(frames())
        assert not self.agent.busy, f"the agent was still busy {SETTLE_S:g} s after the script ended"
        await self.agent.drain()

    async def close(self) -> None:
        await self.agent.cancel_all()
        await self.agent.models.aclose()
        self.agent.turn_log.close()

    @property
    def turns(self) -> list[dict]:
        return read_turns(self.log_path) if self.log_path.exists() else []

    @property
    def speaker(self) -> np.ndarray:
        return np.concatenate(self.output) if self.output else np.zeros(0, dtype=np.float32)

    def sound_between(self, start: float, end: float) -> bool:
        segment = self.speaker[int(start * RATE):int(end * RATE)]
        return bool(segment.size) and float(np.max(np.abs(segment))) > 0.01

    def first_sound_after(self, t: float) -> float | None:
        loud = np.flatnonzero(np.abs(self.speaker[int(t * RATE):]) > 0.01)
        return None if loud.size == 0 else t + loud[0] / RATE

    def last_sound(self) -> float | None:
        loud = np.flatnonzero(np.abs(self.speaker) > 0.01)
        return None if loud.size == 0 else loud[-1] / RATE


def make_harness(tmp_path: Path, words: dict[int, str], *replies, smart_turn: float = 0.9,
                 stall_on: tuple[str, ...] = (), first_token_s: float = 0.1, **overrides) -> Harness:
    overrides.setdefault("turn.greet", False)
    config = load_config(write_config(tmp_path, **overrides))
    return Harness(config, FakeTranscriber(words), FakeChat(*replies, first_token_s=first_token_s),
                   FakeSynthesizer(stall_on), FakeSmartTurn(smart_turn), RecordingReporter(), tmp_path / "turns.jsonl")


def pending_tasks() -> list[asyncio.Task]:
    """Tasks still alive besides the test's own: each one is a leak."""
    return [task for task in asyncio.all_tasks() if task is not asyncio.current_task() and not task.done()]


def converse(h: Harness, *steps, during=None, beside=None, cold_echo_gate: bool = False) -> None:
    """Start the agent, play the script, wait for it to go quiet, close; all on virtual time.

    `beside(agent)` may return a coroutine run alongside (a config watcher), cancelled at the end.
    """
    async def main():
        h.start()
        started = h.agent._start_turn

        def spy(*args, **kwargs):  # every turn, speculative ones too, for their phases
            started(*args, **kwargs)
            h.started.append(h.agent.current)

        h.agent._start_turn = spy
        await h.load()
        side = asyncio.ensure_future(beside(h.agent)) if beside is not None else None
        try:
            await asyncio.wait_for(h.talk(*steps, during=during, cold_echo_gate=cold_echo_gate), timeout=120)
        finally:
            if side is not None:
                side.cancel()
                await asyncio.gather(side, return_exceptions=True)
            await asyncio.wait_for(h.close(), timeout=30)  # bounded: a stuck task fails the test
        h.leftover = pending_tasks()

    run(main())
