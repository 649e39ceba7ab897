"""The GPU-pinned chat deployment: Serve in front of a chat engine.

With the static engine, Serve's dynamic batching (@serve.batch) forms the batches; the continuous
and vLLM engines schedule requests themselves, so each call goes straight to them (awaited on
this event loop, no thread per request).

It knows nothing about storyboards: messages and sampling in, text out. `num_gpus` comes from
the Serve config (1 in serve_config.yaml, 0 in the CPU profile).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ray import serve
from ray.serve.exceptions import RayServeException

from deployments.config import ChatGLMConfig
from deployments.engine import (
    ContinuousBatchingEngine,
    GenerationRequest,
    GenerationResult,
    ModelNotAvailable,
)
from deployments.engine.base import RowOutcome, TextDelta
from deployments.engine.config import BatchingConfig
from deployments.engine.download import Offline, download_checkpoint
from deployments.engine.modes import build_engine
from deployments.engine.vllm_engine import VLLMEngine
from deployments.engine_feeder import EngineFeeder, Ticket
from deployments.metrics import ModelMetrics
from deployments.replica_options import MODEL_REPLICA_RUNTIME_ENV

logger = logging.getLogger("ray.serve")
# Serve batches may all be in flight at once: they only wait in the EngineFeeder, which makes the
# engine batches (each Serve batch holds at least one of at most max_ongoing_requests requests).
SERVE_BATCHES_IN_FLIGHT = 1024


class IgnoreBatchConcurrencyWarning(logging.Filter):
    """Serve warns when max_batch_size × max_concurrent_batches exceeds max_ongoing_requests,
    which is by design here (see SERVE_BATCHES_IN_FLIGHT)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "max_concurrent_batches" not in record.getMessage()


logger.addFilter(IgnoreBatchConcurrencyWarning())


@serve.deployment(
    name="ChatGLM",
    max_queued_requests=256,
    # num_gpus: 0 here; serve_config.yaml pins each replica to one GPU.
    ray_actor_options={"num_cpus": 1, "num_gpus": 0, "runtime_env": MODEL_REPLICA_RUNTIME_ENV},
    health_check_period_s=10,
    health_check_timeout_s=30,
    graceful_shutdown_timeout_s=30,  # a running batch finishes
)
class ChatGLMDeployment:
    async def __init__(self, config: ChatGLMConfig):
        self.config = config
        self.engine = build_engine(config)
        # Engines that schedule requests themselves: no @serve.batch in front of them.
        self.continuous = isinstance(self.engine, ContinuousBatchingEngine | VLLMEngine)
        self.batching = BatchingConfig.model_validate(
            config.model_dump(include=set(BatchingConfig.model_fields))
        )
        self.idle_unload_after_s = config.idle_unload_after_s
        self.idle_unloaded = False
        self.last_request_at = time.monotonic()
        self._lifecycle = asyncio.Lock()  # one load or unload at a time
        self.feeder = EngineFeeder(self.engine.generate, self.batching.max_batch_size)
        await self._start_engine(config)
        if self.idle_unload_after_s:
            self._idle_watch = asyncio.create_task(self._unload_when_idle())

    async def _start_engine(self, config: ChatGLMConfig) -> None:
        """Load the model, downloading it first when allowed; a replica without weights still
        starts (whatever made the download fail), and every request then gets the fallback."""
        try:
            self.engine.start()
            return
        except ModelNotAvailable as error:
            if not config.auto_download:
                logger.warning("LLM not loaded, serving fallback scripts only: %s", error)
                return
        logger.info(
            "no weights at %s: downloading %s@%s",
            config.model_path,
            config.hub_repo_id,
            config.hub_revision,
        )
        try:
            problems = await asyncio.to_thread(
                download_checkpoint,
                Path(config.model_path),
                config.hub_repo_id,
                config.hub_revision,
            )
        except Offline as error:
            problems = [f"hub unreachable: {error}"]
        except Exception as error:  # disk full, unwritable folder, gated repo, hostile names...
            problems = [f"{type(error).__name__}: {error}"]
        if problems:
            self.engine.unavailable_reason = f"auto_download failed: {'; '.join(problems)[:400]}"
            logger.warning("%s; serving fallback scripts only", self.engine.unavailable_reason)
            return
        try:
            self.engine.start()
        except Exception as error:  # the replica stays up, serving the fallback, reason shown
            if not isinstance(error, ModelNotAvailable):
                self.engine.unavailable_reason = f"load after auto_download failed: {error!r}"[:500]
            logger.warning("downloaded, but the model does not load: %s", error)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Apply batching knobs live (`serve deploy` with a new user_config, no restart)."""
        self.batching = BatchingConfig.model_validate(user_config)
        self.generate_batch.set_max_batch_size(self.batching.max_batch_size)
        self.generate_batch.set_batch_wait_timeout_s(self.batching.batch_wait_timeout_s)
        self.feeder.max_batch_size = self.batching.max_batch_size
        logger.info("batching: %s", self.batching.model_dump())
        if isinstance(self.engine, ContinuousBatchingEngine):
            # Its paged KV cache is sized when it loads: the new size applies from the next load.
            self.engine.max_batch_size = self.batching.max_batch_size
            self.engine.kv_cache_tokens = self.config.model_copy(
                update=user_config
            ).kv_cache_tokens()
            logger.info("the continuous engine takes max_batch_size at its next load")

    async def chat(self, request: GenerationRequest) -> GenerationResult:
        arrived_at = time.perf_counter()
        result = await self._chat(request)
        self.record_metrics(result, arrived_at)
        return result

    def record_metrics(self, result: GenerationResult, arrived_at: float) -> None:
        """Record a finished request (`arrived_at`: time.perf_counter() when it came) and the
        batches and prefix-cache hits the engine counted meanwhile (deployments/metrics.py)."""
        metrics = getattr(self, "_metrics", None)
        if metrics is None:  # made in the replica, on first use: Serve tags it with the replica
            metrics = self._metrics = ModelMetrics()
        metrics.record_request(result, arrived_at)
        prefix_cache = getattr(self.engine, "prefix_cache", None)
        metrics.record_engine(
            self.engine.counters.batch_sizes,
            prefix_cache.hits if prefix_cache is not None else None,
        )

    async def _chat(self, request: GenerationRequest) -> GenerationResult:
        self.last_request_at = time.monotonic()
        if self.idle_unloaded:
            await self.load()
        if not self.engine.loaded:
            raise ModelNotAvailable(self.engine.model_path, self.engine.unavailable_reason)
        if self.continuous:
            # Awaited on this event loop, no thread per request: only max_ongoing_requests caps it.
            return await self.engine.chat(request)
        ticket = Ticket(request)
        try:
            outcome = await self.generate_batch(ticket)
        except asyncio.CancelledError:
            ticket.cancelled = True  # Serve cancelled this call: the engine drops or stops it
            raise
        if isinstance(outcome, BaseException):  # this request's own failure (RowFailed)
            raise outcome
        return outcome

    async def chat_stream(
        self, request: GenerationRequest, min_interval_s: float = 0.0
    ) -> AsyncIterator[TextDelta | GenerationResult]:
        """`chat`, streamed: call it through `handle.options(stream=True)`. Yields a TextDelta
        for each piece of text as the engine generates it, then the GenerationResult (whose
        text is the pieces' concatenation); a failure before the first piece is raised as
        `chat` raises it. Streamed requests join the same engine batches as `chat`'s (the
        ticket carries a sink the engine calls on its thread; the deltas cross to this event
        loop through a queue). Closing the stream early stops the request at its next token.
        Pieces that queued up meanwhile leave as one; with `min_interval_s`, at most one
        piece leaves per interval (each crossing to the caller costs a Serve message: a task
        that needs its reply only every progress interval asks for that)."""
        arrived_at = time.perf_counter()
        self.last_request_at = time.monotonic()
        if self.idle_unloaded:
            await self.load()
        if not self.engine.loaded:
            raise ModelNotAvailable(self.engine.model_path, self.engine.unavailable_reason)
        loop = asyncio.get_running_loop()
        deltas: asyncio.Queue[TextDelta] = asyncio.Queue()

        def sink(delta: TextDelta) -> None:  # on the engine's thread
            loop.call_soon_threadsafe(deltas.put_nowait, delta)

        ticket = Ticket(request, sink=sink)
        if self.continuous:
            work = asyncio.ensure_future(self.engine.chat(request, sink))
        else:
            work = asyncio.ensure_future(self.generate_batch(ticket))
        try:
            # Every delta is queued before `work` is done (both cross with call_soon_threadsafe,
            # in order), so the loop ends with all of them sent.
            pending: list[TextDelta] = []
            sent_at = float("-inf")
            while not (work.done() and deltas.empty() and not pending):
                if deltas.empty() and not pending:
                    next_delta = asyncio.ensure_future(deltas.get())
                    await asyncio.wait({next_delta, work}, return_when=asyncio.FIRST_COMPLETED)
                    if not next_delta.done():
                        next_delta.cancel()
                        continue
                    pending.append(next_delta.result())
                while not deltas.empty():
                    pending.append(deltas.get_nowait())
                wait = sent_at + min_interval_s - time.monotonic()
                if wait > 0 and not work.done():
                    await asyncio.wait({work}, timeout=wait)
                    continue
                yield TextDelta("".join(d.text for d in pending), pending[-1].completion_tokens)
                pending, sent_at = [], time.monotonic()
            outcome = work.result()
        finally:
            if not work.done():  # the caller went away (or Serve cancelled the call)
                ticket.cancelled = True
                work.cancel()
        if isinstance(outcome, BaseException):  # this request's own failure (RowFailed)
            raise outcome
        self.record_metrics(outcome, arrived_at)
        yield outcome

    @serve.batch(
        max_batch_size=8, batch_wait_timeout_s=0.05, max_concurrent_batches=SERVE_BATCHES_IN_FLIGHT
    )
    async def generate_batch(self, tickets: list[Ticket]) -> list[RowOutcome | Exception | None]:
        # Joins whatever else waits for the engine (deployments/engine_feeder.py).
        return await self.feeder.generate(tickets)

    async def load(self) -> dict[str, Any]:
        """Load the model (admin route, or the first request after an idle unload); requests
        arriving meanwhile wait for it instead of failing."""
        async with self._lifecycle:
            try:
                await self.feeder.on_engine_thread(self.engine.wakeup)
            except ModelNotAvailable as error:
                logger.warning("load failed: %s", error)
            self.idle_unloaded = False
        return self.status()

    async def unload(self) -> dict[str, Any]:
        """Free the model's memory; requests get the fallback until `load`."""
        async with self._lifecycle:
            await self.feeder.on_engine_thread(self.engine.sleep)
        return self.status()

    async def _unload_when_idle(self) -> None:
        while True:
            await asyncio.sleep(min(self.idle_unload_after_s, 30))
            if self._idle_for() < self.idle_unload_after_s or not self.engine.loaded:
                continue
            async with self._lifecycle:
                idle_s = self._idle_for()  # again: a load may have held the lock meanwhile
                if self.engine.loaded and idle_s >= self.idle_unload_after_s:
                    logger.info("idle for %.0f s: unloading the model", idle_s)
                    self.idle_unloaded = True  # set first: a request arriving now reloads
                    await self.feeder.on_engine_thread(self.engine.sleep)

    def _idle_for(self) -> float:
        return time.monotonic() - self.last_request_at

    def status(self) -> dict[str, Any]:
        engine = "continuous" if self.continuous else "static"
        return {
            "engine": engine,
            "replica_id": _replica_id(),
            **self.engine.status(),
            "batching": self.batching.model_dump(),
        }

    def check_health(self) -> None:
        self.engine.check_health()


def _replica_id() -> str | None:
    """This replica's id for the aggregated status; None when the class runs outside Serve
    (tests and tools build it directly)."""
    try:
        return serve.get_replica_context().replica_id.unique_id
    except RayServeException:
        return None
