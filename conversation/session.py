"""Wiring one session together for each way of running: file, live, text."""
from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from audio_io.clock import InputClock
from audio_io.duplex import AudioDeviceError, FileDuplex, LiveDuplex, SpeakerOnly
from audio_io.echo import EchoCanceller
from audio_io.files import write_wav
from audio_io.player import Player
from audio_io.room import RoomEcho

from .agent import Agent
from .config import Config
from .front_end import FrontEnd
from .models import Models
from .reload import watch_config
from .reporter import Reporter
from .turn_log import TurnLog

log = logging.getLogger(__name__)


@dataclass
class SessionOptions:
    config_path: str | None = None  # watched for edits when given
    persona: str | None = None
    log_path: str | None = None
    realtime: bool = True
    simulate_echo: tuple[float, float] | None = None


@asynccontextmanager
async def config_watcher(agent: Agent, options: SessionOptions, reporter: Reporter):
    """Hot reload for as long as the session runs."""
    task = None
    if options.config_path:
        task = asyncio.ensure_future(watch_config(
            options.config_path, agent.apply_config, lambda: agent.current is None, reporter))
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def loaded_models(config: Config, persona: str, reporter: Reporter):
    models = Models(config, notify=reporter.error)
    reporter.state("loading models")
    try:
        await models.load([config.personas[persona].voice])
        yield models
    finally:
        await models.aclose()


def _persona(config: Config, options: SessionOptions) -> str:
    return options.persona or config.default_persona


async def run_file(config: Config, input_path: str, output_path: str | None, options: SessionOptions,
                   reporter: Reporter) -> Path:
    """Replay a recording as the microphone; write the speaker, aligned, to output_path."""
    clock = InputClock()
    duplex = FileDuplex(input_path, config.audio.block_ms, clock, realtime=options.realtime)
    if options.simulate_echo:
        delay_ms, gain_db = options.simulate_echo
        duplex.echo = RoomEcho(delay_ms, gain_db, sample_rate=duplex.rate)
    persona = _persona(config, options)
    player = Player(duplex.rate, config.audio.prebuffer_ms / 1000)
    turn_log = TurnLog(options.log_path or config.log.turns)
    try:
        async with loaded_models(config, persona, reporter) as models:
            agent = Agent(config, models, player, clock, reporter, turn_log, persona)
            await agent.prepare()
            # A replayed file hears no speaker unless an echo is simulated: then nothing to cancel.
            echo_settings = config.echo if options.simulate_echo else config.echo.model_copy(update={"enabled": False})
            front = FrontEnd(player, duplex.rate, agent.endpointer.frame_len, EchoCanceller(echo_settings))
            front.attach(asyncio.get_running_loop())
            duplex.start(front.on_block, keep_going=lambda: agent.busy or front.pending, on_end=front.end)
            try:
                async with config_watcher(agent, options, reporter):
                    await agent.listen(front.frames())
                    await agent.drain()
            finally:
                await agent.cancel_all()
                duplex.stop()
    finally:
        turn_log.close()
    out = Path(output_path) if output_path else Path(input_path).with_suffix(".agent.wav").name
    write_wav(out, duplex.output, duplex.rate)
    return Path(out)


async def run_live(config: Config, options: SessionOptions, reporter: Reporter) -> None:
    """Talk through the microphone and speaker until Ctrl-C."""
    clock = InputClock()
    duplex = LiveDuplex(config.audio.input_device, config.audio.output_device, config.audio.sample_rate,
                        config.audio.block_ms, clock, config.audio.latency_ms)
    persona = _persona(config, options)
    player = Player(duplex.rate, config.audio.prebuffer_ms / 1000)
    turn_log = TurnLog(options.log_path or config.log.turns)
    try:
        async with loaded_models(config, persona, reporter) as models:
            agent = Agent(config, models, player, clock, reporter, turn_log, persona)
            await agent.prepare()
            front = FrontEnd(player, duplex.rate, agent.endpointer.frame_len, EchoCanceller(config.echo))
            front.attach(asyncio.get_running_loop())
            duplex.start(front.on_block)
            front.output_latency = duplex.output_latency
            try:
                async with config_watcher(agent, options, reporter):
                    if config.turn.greet:
                        await agent.greet()
                    watchdog = asyncio.ensure_future(_watch_stream(duplex, front))
                    try:
                        await agent.listen(front.frames())
                    finally:
                        watchdog.cancel()
                    if not duplex.alive:
                        raise AudioDeviceError("the audio device stopped working (unplugged, or taken by another "
                                               "program); restart, or raise audio.latency_ms")
            finally:
                await agent.cancel_all()
                duplex.stop()
    finally:
        turn_log.close()


async def run_text(config: Config, options: SessionOptions, reporter: Reporter, lines=None) -> None:
    """Type instead of talking; replies are printed and spoken."""
    clock = InputClock()
    speaker = SpeakerOnly(config.audio.output_device, config.audio.sample_rate, config.audio.block_ms, clock,
                          config.audio.latency_ms)
    persona = _persona(config, options)
    player = Player(speaker.rate, config.audio.prebuffer_ms / 1000)
    turn_log = TurnLog(options.log_path or config.log.turns)
    try:
        async with loaded_models(config, persona, reporter) as models:
            agent = Agent(config, models, player, clock, reporter, turn_log, persona)
            await agent.prepare()
            speaker.start(lambda mic, t: player.read(len(mic), t))
            try:
                async with config_watcher(agent, options, reporter):
                    if config.turn.greet:
                        await agent.greet()
                    reporter.state("listening")
                    async for line in _lines(lines):
                        if line.strip():
                            await agent.on_text(line)
            finally:
                await agent.cancel_all()
                speaker.stop()
    finally:
        turn_log.close()


async def _watch_stream(duplex: LiveDuplex, front: FrontEnd) -> None:
    """A device stream that dies leaves the agent deaf: end the session with a message instead."""
    while duplex.alive:
        await asyncio.sleep(0.5)
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
