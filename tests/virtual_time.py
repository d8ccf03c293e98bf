"""An asyncio loop on virtual time: tests of timing logic run in milliseconds.

When nothing is ready to run, the loop waits a moment of real time for work
on other threads (the model threads), then jumps straight to its next timer
instead of sleeping until it. `loop.time()` is the virtual clock.
"""
from __future__ import annotations

import asyncio
import selectors

REAL_GRACE_S = 0.002  # how long the loop waits for other threads when none is working for it
THREAD_GRACE_S = 0.1  # how long a model thread at work gets to answer before time moves on anyway
DEADLOCK_S = 5.0  # no timer, nothing ready, no thread answering for this long: nothing ever will


class Deadlock(RuntimeError):
    """Every task waits on something no one will ever do: a stuck task, not a slow one."""


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None):
        # Time stands still while a model thread works (even on a busy machine), unless it takes
        # long: a synthesizer that stalls until the reply is cancelled needs time to move on.
        grace = THREAD_GRACE_S if self.loop.threads_at_work else REAL_GRACE_S
        events = super().select(0 if timeout == 0 else grace)
        if events or timeout == 0:
            return events
        if timeout is None:  # no timer at all: only another thread can wake us
            events = super().select(DEADLOCK_S)
            if not events:
                raise Deadlock("every task is waiting and no timer is set: something is stuck forever")
            return events
        self.loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        selector = _JumpingSelector()
        super().__init__(selector)
        selector.loop = self
        self._now = 0.0
        self.threads_at_work = 0

    def run_in_executor(self, executor, func, *args):
        future = super().run_in_executor(executor, func, *args)
        self.threads_at_work += 1
        future.add_done_callback(self._thread_done)
        return future

    def _thread_done(self, _future) -> None:
        self.threads_at_work -= 1

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, seconds)


def run(coroutine):
    """asyncio.run on virtual time."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
