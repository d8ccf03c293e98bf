"""The command line: one clear line for every error, never a traceback."""
from __future__ import annotations

import asyncio
import functools
import sys
from contextlib import nullcontext

from audio_io.duplex import AudioDeviceError, list_devices
from audio_io.files import AudioFileError
from audio_io.smart_turn import SmartTurnMissing
from llm.base import LlmError
from stt.whisper import WhisperModelMissing
from tts.errors import VoiceError
from tts.xtts import XttsUnavailableError

from ..config import ConfigError, load_config, with_llm
from ..log_setup import setup_logging
from ..session import SessionOptions, run_file, run_live, run_text
from .plain import PlainReporter

USER_ERRORS = (ConfigError, AudioFileError, AudioDeviceError, WhisperModelMissing, LlmError, VoiceError,
               SmartTurnMissing, ValueError, XttsUnavailableError)


SUBCOMMANDS = ("voices", "report")


def run_subcommand(name: str, argv: list[str]) -> int:
    try:
        if name == "voices":
            from .voices import run as voices

            return voices(argv)
        from ..benchmarks.latency_report import main as report

        return report(argv)
    except USER_ERRORS as error:
        return fail(str(error))


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def run(args) -> int:
    if args.list_devices:
        try:
            print(list_devices())
            return 0
        except AudioDeviceError as error:
            return fail(str(error))
    try:
        adjust = functools.partial(with_llm, target=args.llm, model=args.model)
        config = adjust(load_config(args.config))
        if args.persona and args.persona not in config.personas:
            raise ConfigError(f"--persona: no persona named {args.persona!r}; choose one of {', '.join(config.personas)}")
        options = SessionOptions(config_path=args.config, persona=args.persona, log_path=args.log, realtime=not args.no_realtime,
                                 simulate_echo=_echo_spec(args), adjust=adjust)
    except USER_ERRORS as error:
        return fail(str(error))
    setup_logging(config.log.app)
    if args.benchmark:
        return _benchmark(args, config)
    reporter, view = _reporter(args, config)
    try:
        with view or nullcontext():  # the live view gives the terminal back however the session ends
            if args.input:
                out = asyncio.run(run_file(config, args.input, args.output, options, reporter))
                reporter.info(f"agent output written to {out}")
            elif args.text:
                asyncio.run(run_text(config, options, reporter))
            else:
                asyncio.run(run_live(config, options, reporter, controls=_keys_for(view)))
    except USER_ERRORS as error:
        return fail(str(error))
    except KeyboardInterrupt:
        print("bye")
    return 0


def _reporter(args, config):
    """(reporter, live view or None): the live view on a terminal; lines with --plain, --text or a pipe."""
    # --text reads typed lines from the terminal, which a redrawing view would garble.
    if args.plain or args.text or not sys.stdout.isatty():
        return PlainReporter(), None
    from .live_view import DEFAULT_KEYS, LiveView

    # C libraries (ALSA, llama.cpp) write to fd 2 past Python: into the app log while the view runs.
    view = LiveView(keys=() if args.input else DEFAULT_KEYS, stderr_log=config.log.app)
    persona = args.persona or config.default_persona
    view.set_persona(persona, config.personas[persona].voice)
    return view, view


def _keys_for(view):
    """p/v/?/q while a live session runs; the header follows the agent's persona and voice."""
    if view is None:
        return None
    from .keys import AgentKeys

    def controls(agent, quit):
        view.follow(lambda: (agent.persona_name, agent.voice_name))
        return AgentKeys(agent, quit, toggle_help=view.toggle_help)

    return controls


def _echo_spec(args):
    if not args.simulate_echo:
        return None
    if not args.input:
        raise ConfigError("--simulate-echo works with --input only")
    from audio_io.room import parse_echo_spec

    return parse_echo_spec(args.simulate_echo)


def _benchmark(args, config) -> int:
    from pathlib import Path

    from rich.console import Console

    from ..benchmarks import conversation as conversation_benchmark
    from ..benchmarks import tts as tts_benchmark
    from ..benchmarks import wer as wer_benchmark
    from ..benchmarks.replay import BenchmarkError
    from ..benchmarks.v2v import run_v2v_benchmark

    out = Path(args.bench_out)
    try:
        if args.benchmark in ("tts", "all"):
            tts_benchmark.run(config, out / "tts", tiny_xtts=args.bench_tiny_xtts)
        if args.benchmark in ("v2v", "all"):
            run_v2v_benchmark(args.config, args.bench_dir, out / "v2v", Console(), runs=args.bench_runs)
        if args.benchmark in ("conversation", "all"):
            conversation_benchmark.run_benchmark(args.config, out / "conversation", runs=args.bench_runs,
                                                 clips_dir=args.bench_dir)
        if args.benchmark in ("wer", "all"):
            wer_benchmark.run(args.config, args.bench_dir, out / "wer.json", Console())
    except (BenchmarkError, *USER_ERRORS) as error:
        return fail(str(error))
    return 0
