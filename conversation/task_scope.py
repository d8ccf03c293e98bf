"""Subtasks that cannot outlive their owner."""
from __future__ import annotations

import asyncio
from typing import Coroutine


class TaskScope:
    """`async with TaskScope() as scope: scope.start(...)`.

    On leaving the block, however it is left, every subtask still running is
    cancelled and awaited, so none is ever left pending. Unlike asyncio's
    TaskGroup it doesn't wait for subtasks on a normal exit (what a reply still
    runs then, such as its end-of-turn judge, is no longer needed) and a failing
    subtask doesn't cancel its siblings: its owner awaits it and decides.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def start(self, coroutine: Coroutine) -> asyncio.Task:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        return task

    async def __aenter__(self) -> "TaskScope":
        return self

    async def __aexit__(self, *exc_info) -> None:
        for task in self._tasks:
            task.cancel()
        pending = set(self._tasks)
        cancelled_meanwhile = False
        while pending:  # a second cancel of the owner must not leave them behind
            try:
                _, pending = await asyncio.wait(pending)
            except asyncio.CancelledError:
                cancelled_meanwhile = True
        for task in self._tasks:
            if not task.cancelled():
                task.exception()  # retrieved: asyncio won't warn about it
        if cancelled_meanwhile:
            raise asyncio.CancelledError
