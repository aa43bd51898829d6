"""Blocking client calls (twilio, pyfcm) on a provider's own thread pool, each under a guard."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
logger = logging.getLogger(__name__)


class PoolClosed(Exception):
    """The pool was closed: the call was never started."""


class BlockingPool:
    """`max_threads` threads of one provider; `run` bounds each call by `guard_seconds`.

    A pool of its own (not asyncio's default one) so a slow provider cannot starve the rest
    of the daemon's threads, and a semaphore so the guard times the call itself, never a wait
    in the pool's queue.
    """

    def __init__(self, name: str, max_threads: int, guard_seconds: float) -> None:
        self.name = name
        self.guard_seconds = guard_seconds
        self._max_threads = max_threads
        self._executor = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix=name)
        self._busy: asyncio.Semaphore | None = None
        self.closed = False

    async def run(self, call: Callable[[], T]) -> T:
        """Run `call` on a pool thread; TimeoutError after the guard, PoolClosed after close."""
        if self.closed:
            raise PoolClosed(self.name)
        if self._busy is None:
            self._busy = asyncio.Semaphore(self._max_threads)
        busy = self._busy
        # Take a thread slot first, and give it back only when the thread is really done (a
        # guard timeout leaves the call running until the client's own timeout ends it).
        await busy.acquire()
        loop = asyncio.get_running_loop()

        def release(_: Future[T]) -> None:
            # A closed loop raises RuntimeError: then nobody waits on the slot any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(busy.release)

        try:
            future = self._executor.submit(call)
        except RuntimeError:  # shut down between the check above and here
            busy.release()
            raise PoolClosed(self.name) from None
        future.add_done_callback(release)
        return await asyncio.wait_for(asyncio.wrap_future(future), self.guard_seconds)

    async def close(self) -> None:
        """Take no more calls; let the ones running finish, at most one guard long."""
        if self.closed:
            return
        self.closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        try:
            await asyncio.wait_for(
                asyncio.to_thread(self._executor.shutdown, wait=True), self.guard_seconds
            )
        except TimeoutError:
            logger.warning("%s: a call was still running at close; closing under it", self.name)
