"""Running accepted tasks in the background of an ingress replica, under a renewed lease.

Accepted work is in SQLite before the client hears 202. The replica that accepted a task runs
it; if that replica dies, the lease runs out and any ingress replica adopts the task. A replica
refuses new work (before storing anything) once it holds `max_unfinished_tasks`, so a burst is
shed at the door instead of piling up behind the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from ray.serve.handle import DeploymentHandle

from deployments.storyboard.hints import apply_hints
from serve_app.config import Settings
from serve_app.errors import Overloaded
from serve_app.pipeline import ScriptPipeline
from serve_app.protocol import ScriptRequest, TaskResponse, TaskStatus, TaskTimings

logger = logging.getLogger("ray.serve")


class TaskRunner:
    def __init__(self, store: DeploymentHandle, pipeline: ScriptPipeline, settings: Settings):
        self.store = store
        self.pipeline = pipeline
        self.lease_s = settings.task_lease_s
        self.max_attempts = settings.task_max_attempts
        self.max_unfinished = settings.max_unfinished_tasks
        self.retry_after_s = settings.overload_retry_after_s
        self._being_accepted = 0
        self._cancel_reasons: dict[str, str] = {}
        self.worker_id = f"ingress-{uuid.uuid4().hex[:12]}"
        self._running: dict[str, asyncio.Task] = {}
        self._adopter: asyncio.Task | None = None

    def start_adopting_orphans(self) -> None:
        """Begin the loop that takes over tasks whose worker died (needs a running event loop)."""
        self._adopter = asyncio.create_task(self._adopt_orphans_forever())

    @property
    def unfinished(self) -> int:
        return len(self._running) + self._being_accepted

    async def submit(self, request: ScriptRequest) -> dict[str, Any]:
        """Store the task and start it; Overloaded (nothing stored) when the replica is full.

        A script the pipeline has at hand (cached, or the fallback while the model is known to
        be down) is stored already finished, in that one call. A length or scene count the
        prompt states fills what the request left out, for every path (notes say so).
        """
        if self.unfinished >= self.max_unfinished:
            raise Overloaded(
                f"this replica already has {self.unfinished} unfinished tasks (the limit is "
                f"{self.max_unfinished}); retry later",
                self.retry_after_s,
            )
        request, notes = apply_hints(request)
        stored_request = request.model_dump(mode="json")
        at_hand = self.pipeline.script_at_hand(request)
        if at_hand is not None:
            return await self._store_finished(stored_request, at_hand, notes)
        return await self._store_and_run(stored_request, request, notes)

    async def _store_finished(
        self, stored_request: dict[str, Any], outcome: dict[str, Any], notes: tuple[str, ...]
    ) -> dict[str, Any]:
        self._being_accepted += 1
        try:
            return await self.store.create_completed.remote(
                stored_request, self.worker_id, outcome, notes
            )
        finally:
            self._being_accepted -= 1

    async def _store_and_run(
        self, stored_request: dict[str, Any], request: ScriptRequest, notes: tuple[str, ...]
    ) -> dict[str, Any]:
        """The stored task, running under this worker's lease. The model work starts while the
        row is being written (one store call less on the way to the script); the row is there
        before anyone hears of the task, and before the runner writes to it."""
        task_id = uuid.uuid4().hex
        stored = asyncio.ensure_future(
            self.store.create_running.remote(
                task_id, stored_request, self.worker_id, self.lease_s, notes
            )
        )
        self._run_in_background(task_id, functools.partial(self._run, task_id, request, stored))
        try:
            return await asyncio.shield(stored)
        except Exception:
            runner = self._running.get(task_id)
            if runner is not None:
                runner.cancel()  # not accepted: nothing may run for it
            raise

    async def wait(self, task_id: str, timeout_s: float) -> dict[str, Any] | None:
        """The finished task once this replica has run it; None after `timeout_s`, or when
        another worker has it."""
        running = self._running.get(task_id)
        if running is None:
            return None
        # A runner that failed (e.g. the store restarting) leaves the task to its lease; the
        # route then answers with what the store holds, never with a 500.
        with contextlib.suppress(TimeoutError, Exception):
            return await asyncio.wait_for(asyncio.shield(running), timeout_s)
        return None

    def cancel(self, task_id: str, reason: str) -> None:
        """Stop running a task: its pending model call is cancelled and it fails with `reason`."""
        running = self._running.get(task_id)
        if running is not None:
            self._cancel_reasons[task_id] = reason
            running.cancel()

    def _run_in_background(
        self, task_id: str, run: Callable[[], Coroutine[Any, Any, dict[str, Any] | None]]
    ) -> None:
        if task_id in self._running:
            return  # already ours: a sweep after failed lease renewals must not run it twice
        runner = asyncio.create_task(run())
        self._running[task_id] = runner
        runner.add_done_callback(lambda _: self._forget(task_id, runner))

    def _forget(self, task_id: str, runner: asyncio.Task) -> None:
        if self._running.get(task_id) is runner:
            del self._running[task_id]
        self._cancel_reasons.pop(task_id, None)

    async def _resume(self, task_id: str, request: ScriptRequest) -> dict[str, Any] | None:
        """Run an adopted task: mark it running under this worker first."""
        if await self.store.start.remote(task_id, self.worker_id, self.lease_s) is None:
            return None  # deleted, or finished by another worker meanwhile
        return await self._run(task_id, request)

    async def _run(
        self, task_id: str, request: ScriptRequest, stored: asyncio.Future | None = None
    ) -> dict[str, Any] | None:
        """Run a task this worker holds the lease of to its end; the finished task, or None
        when it was gone meanwhile. `stored`: the call writing the task's row, if in flight."""
        heartbeat = asyncio.create_task(self._renew_lease(task_id))
        try:
            result = await self.pipeline.write_script(request)
            if stored is not None:
                await stored
            finished = await self.store.complete.remote(task_id, self.worker_id, result)
            if finished is None:
                logger.info("task %s was deleted or taken over before it finished", task_id)
            return finished
        except asyncio.CancelledError:
            # Cancelled on purpose → failed with the reason; by a shutdown → left to the lease,
            # so another replica (or this app after a restart) resumes it.
            reason = self._cancel_reasons.pop(task_id, None)
            if reason is not None:
                await self.store.fail.remote(task_id, reason)
            raise
        except Exception as error:
            logger.exception("task %s failed", task_id)
            return await self.store.fail.remote(task_id, f"{type(error).__name__}: {error}"[:500])
        finally:
            heartbeat.cancel()

    async def _renew_lease(self, task_id: str) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                await self.store.renew_lease.remote(task_id, self.worker_id, self.lease_s)
            except Exception as error:  # the store restarting must not kill the task
                logger.warning("could not renew the lease of task %s: %r", task_id, error)

    async def _adopt_orphans_forever(self) -> None:
        while True:
            try:
                capacity = self.max_unfinished - self.unfinished
                orphans = (
                    await self.store.adopt_orphans.remote(
                        self.worker_id, self.lease_s, self.max_attempts, capacity
                    )
                    if capacity > 0
                    else []
                )
                for task in orphans:
                    logger.info("adopting task %s (attempt %d)", task["task_id"], task["attempts"])
                    request = ScriptRequest.model_validate(task["request"])
                    self._run_in_background(
                        task["task_id"], functools.partial(self._resume, task["task_id"], request)
                    )
            except Exception as error:
                logger.warning("orphan sweep failed: %r", error)
            await asyncio.sleep(self.lease_s / 2)


def is_finished(task: dict[str, Any]) -> bool:
    return task["status"] in (TaskStatus.COMPLETED, TaskStatus.FAILED)


def as_datetime(timestamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, tz=UTC) if timestamp else None


def elapsed_ms(start: float | None, end: float | None) -> float | None:
    return round((end - start) * 1000, 1) if start and end else None


def to_task_response(task: dict[str, Any]) -> TaskResponse:
    return TaskResponse(
        task_id=task["task_id"],
        status=task["status"],
        progress=task["progress"],
        prompt=task["request"]["prompt"],
        request=ScriptRequest.model_validate(task["request"]),
        result=task["result"],
        source=task["source"],
        fallback_reason=task["fallback_reason"],
        fallback_template=task.get("fallback_template"),
        notes=task.get("notes", []),
        error=task["error"],
        attempts=task["attempts"],
        created_at=as_datetime(task["created_at"]),
        started_at=as_datetime(task["started_at"]),
        completed_at=as_datetime(task["completed_at"]),
        timings=TaskTimings(
            queued_ms=elapsed_ms(task["created_at"], task["started_at"]),
            generation_ms=task["generation_ms"],
            total_ms=elapsed_ms(task["created_at"], task["completed_at"]),
        ),
    )
