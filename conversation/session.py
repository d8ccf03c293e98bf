"""Wiring one session together for each way of running: file, live, text."""
from __future__ import annotations

import asyncio
import logging
import sys
from collections import deque
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from audio_io.clock import InputClock
from audio_io.duplex import AudioDeviceError, FileDuplex, LiveDuplex, MicTransform
from audio_io.echo import EchoCanceller
from audio_io.player import Player
from audio_io.room import RoomEcho

from .agent import Agent
from .config import Config
from .front_end import FrontEnd
from .models import LoadProgress, Models
from .reload import watch_config
from .reporter import Reporter
from .turn_log import TurnLog

log = logging.getLogger(__name__)

STREAM_POLL_S = 0.5  # how often the live stream is checked, and the unit of the wait before reopening it
STREAM_RESTARTS = 3  # a stream that dies this often ...
STREAM_RESTART_WINDOW_S = 30.0  # ... within this long is broken, not hiccuping

# Builds the session's models from its config; told how to tell the person about a fallback.
ModelsFactory = Callable[[Config, Callable[[str], None]], Models]
# Given the agent and a way to end the session, what runs beside it (the live view's keys).
Controls = Callable[[Agent, Callable[[], None]], AbstractAsyncContextManager]


@dataclass
class SessionOptions:
    config_path: str | None = None  # watched for edits when given
    persona: str | None = None
    log_path: str | None = None
    realtime: bool = True
    simulate_echo: tuple[float, float] | None = None
    room_voice: MicTransform | None = None  # file mode: someone in the room who reacts to the speaker
    make_models: ModelsFactory = Models.from_config  # the one place a session's models are built
    adjust: Callable[[Config], Config] = lambda config: config  # command-line settings, laid over every read


@asynccontextmanager
async def config_watcher(agent: Agent, options: SessionOptions, reporter: Reporter):
    """Hot reload for as long as the session runs."""
    task = None
    if options.config_path:
        task = asyncio.ensure_future(watch_config(
            options.config_path, lambda: agent.config, agent.apply_config, lambda: agent.idle, reporter,
            adjust=options.adjust))
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def loaded_models(config: Config, persona: str, reporter: Reporter, make_models: ModelsFactory):
    models = make_models(config, reporter.error)
    reporter.state("loading models")
    progress = reporter if isinstance(reporter, LoadProgress) else None  # the live view draws each model
    try:
        await models.load(config, [config.personas[persona].voice], progress)
        reporter.info(f"answering with {models.chat.describe()}")
        yield models
    finally:
        log.info("stopping: models")  # each step of a shutdown is logged: a slow one shows where
        await models.aclose()
        log.info("stopped")


@asynccontextmanager
async def running_agent(config: Config, options: SessionOptions, reporter: Reporter, rate: int, clock: InputClock):
    """Models loaded and warm, an agent speaking at `rate`; all of it closed afterwards."""
    persona = options.persona or config.default_persona
    player = Player(rate, config.audio.prebuffer_ms / 1000)
    turn_log = TurnLog(options.log_path or config.log.turns)
    try:
        async with loaded_models(config, persona, reporter, options.make_models) as models:
            agent = Agent(config, models, player, clock, reporter, turn_log, persona)
            await agent.prepare()
            try:
                async with config_watcher(agent, options, reporter):
                    yield agent
            finally:
                log.info("stopping: replies in flight")
                await agent.cancel_all()
    finally:
        turn_log.close()


async def run_file(config: Config, input_path: str, output_path: str | None, options: SessionOptions,
                   reporter: Reporter) -> Path:
    """Replay a recording as the microphone; write the speaker, aligned, to output_path."""
    clock = InputClock()
    out = Path(output_path) if output_path else Path(Path(input_path).with_suffix(".agent.wav").name)
    duplex = FileDuplex(input_path, out, config.audio.block_ms, clock, realtime=options.realtime)
    if options.simulate_echo:
        delay_ms, gain_db = options.simulate_echo
        duplex.room.append(RoomEcho(delay_ms, gain_db, sample_rate=duplex.rate))
    if options.room_voice is not None:
        duplex.room.append(options.room_voice)
    # A replayed file hears no speaker unless an echo is simulated: then there is nothing to cancel.
    echo_settings = config.echo if options.simulate_echo else config.echo.model_copy(update={"enabled": False})
    try:
        async with running_agent(config, options, reporter, duplex.rate, clock) as agent:
            front = FrontEnd(agent.player, duplex.rate, agent.endpointer.frame_len, EchoCanceller(echo_settings))
            front.attach(asyncio.get_running_loop())
            front.probe_echo()
            duplex.start(front.on_block, keep_going=lambda: agent.busy or front.pending, on_end=front.end)
            try:
                await agent.listen(front.frames())
                await agent.drain()
            finally:
                duplex.stop()  # before the agent closes: the replay thread calls into it
    finally:
        duplex.stop()  # the models failed to load: the output file is closed all the same
    return out


async def run_live(config: Config, options: SessionOptions, reporter: Reporter,
                   controls: Controls | None = None) -> None:
    """Talk through the microphone and speaker until Ctrl-C (or `controls` calls quit)."""
    clock = InputClock()
    duplex = LiveDuplex(config.audio.input_device, config.audio.output_device, config.audio.sample_rate,
                        config.audio.block_ms, clock, config.audio.latency_ms)
    async with running_agent(config, options, reporter, duplex.rate, clock) as agent:
        front = FrontEnd(agent.player, duplex.rate, agent.endpointer.frame_len, EchoCanceller(config.echo))
        front.attach(asyncio.get_running_loop())
        front.probe_echo()
        duplex.start(front.on_block)
        front.output_latency = duplex.output_latency
        watchdog = asyncio.ensure_future(_watch_stream(duplex, front, reporter.info))
        try:
            async with controls(agent, front.end) if controls else nullcontext():
                if config.turn.greet:
                    await agent.greet()
                await agent.listen(front.frames())
        finally:
            log.info("stopping: audio devices")
            watchdog.cancel()
            duplex.stop()
        if watchdog.done() and not watchdog.cancelled():  # the stream died under us
            raise AudioDeviceError("the audio device kept stopping, even when reopened (unplugged, taken by "
                                   "another program, or too busy); raise audio.latency_ms, or restart")


async def run_text(config: Config, options: SessionOptions, reporter: Reporter, lines=None) -> None:
    """Type instead of talking; replies are printed and spoken."""
    clock = InputClock()
    speaker = LiveDuplex(None, config.audio.output_device, config.audio.sample_rate, config.audio.block_ms, clock,
                         config.audio.latency_ms, listen=False)
    async with running_agent(config, options, reporter, speaker.rate, clock) as agent:
        speaker.start(lambda mic, t: agent.player.read(len(mic), t))
        try:
            if config.turn.greet:
                await agent.greet()
            reporter.state("listening")
            async for line in _lines(lines):
                if line.strip():
                    await agent.on_text(line)
        finally:
            speaker.stop()


async def _watch_stream(duplex: LiveDuplex, front: FrontEnd, say: Callable[[str], None]) -> None:
    """A device stream that dies leaves the agent deaf: reopen it, and end the session only if it keeps dying.

    PortAudio's ALSA streams die on an overrun they cannot recover (a busy machine, a sound server
    that changes its timing); reopened, they run on. The input timeline goes on from where it was.
    """
    recent: deque[float] = deque(maxlen=STREAM_RESTARTS)
    while True:
        while duplex.alive:
            await asyncio.sleep(STREAM_POLL_S)
        now = asyncio.get_running_loop().time()
        if len(recent) == STREAM_RESTARTS and now - recent[0] < STREAM_RESTART_WINDOW_S:
            break
        recent.append(now)
        log.warning("the audio stream stopped; reopening it")
        duplex.stop()
        await asyncio.sleep(STREAM_POLL_S * len(recent))  # give whatever upset it a moment to settle
        try:
            duplex.start(front.on_block)
        except AudioDeviceError:
            break
        front.output_latency = duplex.output_latency
        say("the audio device hiccuped; reopened it")
    front.end()


async def _lines(lines):
    if lines is not None:
        for line in lines:
            yield line
        return
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        yield line
