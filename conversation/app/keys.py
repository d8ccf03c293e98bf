"""Single key presses in the live view: p next persona, v next voice, ? help, q quit.

The terminal is put in cbreak mode (keys arrive unbuffered and unechoed,
Ctrl-C still interrupts) only while a `KeyReader` is open, and always put
back. Keys are read by the asyncio loop itself (`loop.add_reader`), so the
callbacks run on the loop like everything else the agent does. Off a
terminal (a pipe, a test, a service) nothing is read and nothing changes.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from typing import Callable, Mapping, Sequence, TextIO

log = logging.getLogger(__name__)

ESCAPE = "\x1b"  # arrow and function keys send escape sequences: not ours
SLOW_LOAD_S = 1.0  # a voice that took longer than this gets a "ready" line


class KeyReader:
    """Calls `on_key[key]()` on the running loop for each key typed, for as long as it is open."""

    def __init__(self, on_key: Mapping[str, Callable[[], None]], stream: TextIO | None = None):
        self._on_key = dict(on_key)
        self._stream = stream if stream is not None else sys.stdin
        self._fd: int | None = None
        self._saved_mode: list | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def active(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> KeyReader:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        """Start reading keys; must be called on the running loop."""
        if self.active or not _is_terminal(self._stream):
            return
        import termios
        import tty

        loop = asyncio.get_running_loop()
        fd = self._stream.fileno()
        self._saved_mode = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd, termios.TCSANOW)
            loop.add_reader(fd, self._on_readable)
        except BaseException:
            termios.tcsetattr(fd, termios.TCSADRAIN, self._saved_mode)
            raise
        self._fd, self._loop = fd, loop

    def close(self) -> None:
        """Stop reading and give the terminal back exactly as it was."""
        if self._fd is None:
            return
        import termios

        fd, self._fd = self._fd, None
        try:
            if not self._loop.is_closed():
                self._loop.remove_reader(fd)
        finally:
            with contextlib.suppress(termios.error):  # a terminal that went away needs no restoring
                termios.tcsetattr(fd, termios.TCSADRAIN, self._saved_mode)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, 64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the terminal went away: stop listening, leave the session running
            data = b""
        if not data:
            if self._loop is not None and self._fd is not None:
                self._loop.remove_reader(self._fd)
            return
        for key in keys_in(data):
            self.press(key)

    def press(self, key: str) -> None:
        """What typing `key` does (also how the tests press keys)."""
        action = self._on_key.get(key) or self._on_key.get(key.lower())
        if action is None:
            return
        try:
            action()
        except Exception:  # a failing action must not stop the keys, nor the conversation
            log.exception("key %r failed", key)


def keys_in(data: bytes) -> list[str]:
    """The plain keys in what the terminal sent, without escape sequences."""
    text = data.decode("utf-8", errors="ignore")
    return list(text.split(ESCAPE, 1)[0])


def next_name(names: Sequence[str], current: str) -> str:
    """The name after `current`, wrapping round (the first one if `current` is not there)."""
    names = list(names)
    if current not in names:
        return names[0]
    return names[(names.index(current) + 1) % len(names)]


class AgentKeys:
    """The keys of a live session, and the voice loads they start (awaited on exit).

        async with AgentKeys(agent, quit=front.end, toggle_help=view.toggle_help):
            await agent.listen(...)
    """

    def __init__(self, agent, quit: Callable[[], None], toggle_help: Callable[[], None] | None = None,
                 stream: TextIO | None = None):
        self.agent = agent
        keys = {"p": self.next_persona, "v": self.next_voice, "q": quit}
        if toggle_help is not None:
            keys["?"] = toggle_help
        self.reader = KeyReader(keys, stream)
        self._loads: set[asyncio.Task] = set()
        self._one_load_at_a_time = asyncio.Lock()  # two presses must not load XTTS twice

    async def __aenter__(self) -> AgentKeys:
        self.reader.open()
        return self

    async def __aexit__(self, *exc) -> None:
        self.reader.close()
        for task in self._loads:
            task.cancel()
        await asyncio.gather(*self._loads, return_exceptions=True)

    def next_persona(self) -> None:
        self.agent.switch_persona(next_name(self.agent.config.personas, self.agent.persona_name))
        self._load(self.agent.voice_name)
        self._start(self.agent.prepare())  # the new system prompt, read before the next reply needs it

    def next_voice(self) -> None:
        self.agent.switch_voice(next_name(self.agent.config.voices, self.agent.voice_name))
        self._load(self.agent.voice_name)

    def _load(self, voice: str) -> None:
        # Until it is loaded, replies fall back to the bundled voice (Models.voice_for).
        self._start(self._ensure_voice(voice))

    def _start(self, work) -> None:
        task = asyncio.ensure_future(work)
        self._loads.add(task)
        task.add_done_callback(self._loads.discard)

    async def _ensure_voice(self, voice: str) -> None:
        started = time.monotonic()
        try:
            async with self._one_load_at_a_time:
                await self.agent.load_voice(voice)
        except Exception as error:
            log.exception("loading voice %r failed", voice)
            self.agent.reporter.error(f"voice {voice!r} could not be loaded: {error}")
            return
        if time.monotonic() - started > SLOW_LOAD_S:
            self.agent.reporter.info(f"voice {voice} ready")


def _is_terminal(stream) -> bool:
    try:
        return os.name == "posix" and stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
