"""One dedicated thread per model, driven from asyncio."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import AsyncIterator, Callable, Iterator, TypeVar

T = TypeVar("T")
_DONE = object()


class ModelThread:
    """Runs every call of one model on the same thread (models are not thread-safe).

    A blocking iterator advances one `next()` per hop, so cancelling the
    awaiting task stops it after at most one item, and `close()` runs on the
    model's own thread.
    """

    def __init__(self, name: str):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def call(self, fn: Callable[..., T], *args) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def iterate(self, start: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
        loop = asyncio.get_running_loop()
        items = await loop.run_in_executor(self._executor, lambda: iter(start()))
        try:
            while True:
                item = await loop.run_in_executor(self._executor, next, items, _DONE)
                if item is _DONE:
                    return
                yield item
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                await asyncio.shield(loop.run_in_executor(self._executor, close))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
