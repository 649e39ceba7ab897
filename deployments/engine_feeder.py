"""Feeding a static-batching engine from @serve.batch: one engine thread, and each engine batch
made of everything that waits when the engine is free.

@serve.batch forms a batch as soon as requests arrive (`batch_wait_timeout_s` after the first),
also while the engine is still running the previous one; on its own that lines small batches up
behind the running one (measured with 16 closed-loop clients: mean batch 2.8, BENCHMARKS.md).
Here the batches Serve hands over wait together, and when the engine is free they run as one
batch of up to `max_batch_size` requests, oldest first. Serve cancels a request (its caller's
deadline passed, its task deleted or cancelled) only on the caller's side of the batch, so each
request travels in a `Ticket` that its caller marks when cancelled: a marked ticket never reaches
the engine, and one already generating stops at its next token (the engine asks each row's
`Ticket.is_cancelled` as it goes).

A ticket may carry a sink (a streamed request, `ChatGLMDeployment.chat_stream`): the engine
hands it the row's text as it is generated; streamed and unstreamed tickets share batches.

Each caller gets its own row's outcome: a row that failed alone (the engine's RowFailed) fails
only its caller; an engine that raises (not loaded) fails the whole batch.

All engine work runs on one thread: torch's CPU thread pool belongs to the thread that calls it,
and asyncio's default executor rotates calls over several threads, each with a pool of its own
competing for the same cores.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

logger = logging.getLogger("ray.serve")


@dataclass
class Ticket:
    """One request on its way to the engine; `cancelled` once its caller gave up; `sink`
    receives its text as it is generated (a streamed request), called on the engine thread."""

    request: Any
    cancelled: bool = False
    sink: Callable[[Any], None] | None = None

    def is_cancelled(self) -> bool:
        return self.cancelled


class EngineFeeder:
    def __init__(
        self,
        generate: Callable[[list[Any], list[Callable[[], bool]]], list[Any]],
        max_batch_size: int,
    ):
        """`generate(requests, cancel_checks)` gives one outcome per request: a result or an
        exception (that request's failure); a batch with streamed tickets is generated as
        `generate(requests, cancel_checks, sinks=...)`."""
        self.generate_on_engine = generate
        self.max_batch_size = max_batch_size
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        self._waiting: deque[tuple[Ticket, asyncio.Future]] = deque()
        self._feeding: asyncio.Task | None = None

    async def on_engine_thread(self, function: Callable, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.thread, function, *args)

    async def generate(self, tickets: list[Ticket]) -> list[Any]:
        """Outcomes for `tickets`, generated together with whatever else waits: a result, or
        the exception that failed that ticket (returned, not raised, so that it fails only its
        own caller); None for a ticket cancelled before it ran (its caller is gone)."""
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in tickets]
        self._waiting.extend(zip(tickets, futures, strict=True))
        if self._feeding is None or self._feeding.done():
            self._feeding = asyncio.create_task(self._feed())
        return list(await asyncio.gather(*futures))

    async def _feed(self) -> None:
        while self._waiting:
            batch = []
            while self._waiting and len(batch) < self.max_batch_size:
                ticket, future = self._waiting.popleft()
                if ticket.cancelled and not future.done():
                    future.set_result(None)
                elif not future.done():
                    batch.append((ticket, future))
            if not batch:
                continue
            logger.info("generating a batch of %d", len(batch))
            sinks = [ticket.sink for ticket, _ in batch]
            streamed = {"sinks": sinks} if any(sinks) else {}
            try:
                outcomes = await self.on_engine_thread(
                    partial(self.generate_on_engine, **streamed),
                    [ticket.request for ticket, _ in batch],
                    [ticket.is_cancelled for ticket, _ in batch],
                )
            except Exception as error:  # this batch's callers get it; the next batch still runs
                outcomes = [error] * len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)
