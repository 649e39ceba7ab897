"""Running accepted tasks in the background of an ingress replica, under a renewed lease.

Accepted work is in SQLite before the client hears 202. The replica that accepted a task runs
it; if that replica dies, the lease runs out and any ingress replica adopts the task. A replica
refuses new work (before storing anything) once it holds `max_unfinished_tasks`, so a burst is
shed at the door instead of piling up behind the model. A replica that loses a task's lease
(deleted, cancelled, taken over) stops its work on it, so no task runs twice; finished tasks
are deleted after `task_retention_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from ray.serve.handle import DeploymentHandle

from deployments.storyboard.hints import apply_hints
from serve_app.config import Settings
from serve_app.errors import FieldError, Overloaded
from serve_app.pipeline import ScriptPipeline
from serve_app.protocol import ScriptRequest, TaskStatus
from serve_app.store_client import StoreClient
from serve_app.task_progress import ProgressReporter
from serve_app.task_responses import stored_request, task_json
from serve_app.webhooks import CALLBACK_FIELD, CallbackRefused, WebhookSender

__all__ = ["TaskRunner", "is_finished", "request_digest", "stored_request"]

logger = logging.getLogger("ray.serve")

IDEMPOTENCY_HEADER = "header.idempotency-key"
POLL_S = 0.25  # how often a wait on another worker's task asks the store
PURGE_BATCH = 500  # finished tasks deleted per store call (the store answers others between)
PURGE_MAX_BATCHES = 20  # per round; the next round continues
PURGE_INTERVAL_S = 60.0


class TaskRunner:
    def __init__(self, store: DeploymentHandle, pipeline: ScriptPipeline, settings: Settings):
        self.store = StoreClient(store, settings.overload_retry_after_s)
        self.pipeline = pipeline
        self.lease_s = settings.task_lease_s
        self.max_attempts = settings.task_max_attempts
        self.max_unfinished = settings.max_unfinished_tasks
        self.retry_after_s = settings.overload_retry_after_s
        self.retention_s = settings.task_retention_s
        self._being_accepted = 0
        self._cancel_reasons: dict[str, str] = {}
        self.worker_id = f"ingress-{uuid.uuid4().hex[:12]}"
        self._running: dict[str, asyncio.Task] = {}
        self._background: list[asyncio.Task] = []
        self.progress_interval_s = settings.task_progress_interval_s
        self.webhooks = WebhookSender(
            settings,
            self.store,
            functools.partial(task_json, retention_s=settings.task_retention_s),
        )

    def start_background_work(self) -> None:
        """Begin adopting orphans and deleting expired tasks (needs a running event loop)."""
        self._background = [
            asyncio.create_task(self._adopt_orphans_forever()),
            asyncio.create_task(self._purge_expired_forever()),
        ]

    @property
    def unfinished(self) -> int:
        return len(self._running) + self._being_accepted

    async def submit(
        self,
        request: ScriptRequest,
        owner: str | None = None,
        idempotency_key: str | None = None,
        callback_url: str | None = None,
    ) -> dict[str, Any]:
        """Store the task and start it; Overloaded (nothing stored) when the replica is full.

        A script the pipeline has at hand (cached, or the fallback while the model is known to
        be down) is stored already finished, in that one call. A length or scene count the
        prompt states fills what the request left out, for every path (notes say so). With an
        `idempotency_key` the owner used before, the task stored then comes back instead,
        marked `replayed` (FieldError when that task was for a different request). A
        `callback_url` the webhook policy refuses is a FieldError naming body.callback_url;
        an accepted one is POSTed the task when it finishes. A `model` not served is a
        FieldError naming body.model.
        """
        if callback_url is not None:
            try:
                self.webhooks.check_url(callback_url)
            except CallbackRefused as error:
                raise FieldError(CALLBACK_FIELD, str(error)) from None
        # The stored request names its model (the default's id when it named none), so an
        # adopted task and its edits use that model; the digest is of the body as sent.
        named = self.pipeline.named(request)  # FieldError naming body.model if not served
        if self.unfinished >= self.max_unfinished:
            raise Overloaded(
                f"this replica already has {self.unfinished} unfinished tasks (the limit is "
                f"{self.max_unfinished}); retry later",
                self.retry_after_s,
            )
        idempotency = None
        if idempotency_key is not None:
            idempotency = (idempotency_key, request_digest(request, callback_url))
        request, notes = apply_hints(named)
        stored = request.model_dump(mode="json")
        at_hand = self.pipeline.script_at_hand(request)
        if at_hand is not None:
            task = await self._store_finished(
                stored, at_hand, notes, owner, idempotency, callback_url
            )
            if not task.get("replayed"):
                self.webhooks.notify(task)
        elif idempotency is not None:
            task = await self._store_then_run(
                stored, request, notes, owner, idempotency, callback_url
            )
        else:
            task = await self._store_and_run(stored, request, notes, owner, callback_url)
        if task.get("replayed") and idempotency and task["request_digest"] != idempotency[1]:
            raise FieldError(
                IDEMPOTENCY_HEADER,
                f"{idempotency_key!r} was used before with a different request body; send a "
                "new key for a new request",
            )
        return task

    async def _store_finished(
        self,
        stored_request: dict[str, Any],
        outcome: dict[str, Any],
        notes: tuple[str, ...],
        owner: str | None,
        idempotency: tuple[str, str] | None,
        callback_url: str | None,
    ) -> dict[str, Any]:
        self._being_accepted += 1
        try:
            return await self.store.call(
                "create_completed",
                stored_request,
                self.worker_id,
                outcome,
                notes,
                owner,
                idempotency,
                callback_url,
            )
        finally:
            self._being_accepted -= 1

    async def _store_and_run(
        self,
        stored_request: dict[str, Any],
        request: ScriptRequest,
        notes: tuple[str, ...],
        owner: str | None,
        callback_url: str | None,
    ) -> dict[str, Any]:
        """The stored task, running under this worker's lease. The model work starts while the
        row is being written (one store call less on the way to the script); the row is there
        before anyone hears of the task, and before the runner writes to it."""
        task_id = uuid.uuid4().hex
        stored = asyncio.ensure_future(
            self.store.call(
                "create_running",
                task_id,
                stored_request,
                self.worker_id,
                self.lease_s,
                notes,
                owner,
                None,
                callback_url,
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

    async def _store_then_run(
        self,
        stored_request: dict[str, Any],
        request: ScriptRequest,
        notes: tuple[str, ...],
        owner: str | None,
        idempotency: tuple[str, str],
        callback_url: str | None,
    ) -> dict[str, Any]:
        """As `_store_and_run`, but the model work starts only once the row is written: the
        key may name a task stored before, and then nothing new may run."""
        task_id = uuid.uuid4().hex
        self._being_accepted += 1
        try:
            task = await self.store.call(
                "create_running",
                task_id,
                stored_request,
                self.worker_id,
                self.lease_s,
                notes,
                owner,
                idempotency,
                callback_url,
            )
        finally:
            self._being_accepted -= 1
        if not task.get("replayed"):
            self._run_in_background(task_id, functools.partial(self._run, task_id, request))
        return task

    async def wait(self, task_id: str, timeout_s: float) -> dict[str, Any] | None:
        """The task once finished, or as it stands after `timeout_s`; None when it is gone.
        A task this replica runs is awaited; another worker's (a replayed request, an adopted
        task) is read from the store every POLL_S."""
        deadline = time.monotonic() + timeout_s
        running = self._running.get(task_id)
        if running is not None:
            # asyncio.wait: neither the runner's failure nor its cancellation (a lost lease)
            # reaches this caller; only this caller's own cancellation does.
            await asyncio.wait({running}, timeout=timeout_s)
            if running.done() and not running.cancelled() and running.exception() is None:
                finished = running.result()
                if finished is not None:
                    return finished
        return await self._poll_until_finished(task_id, deadline)

    async def _poll_until_finished(self, task_id: str, deadline: float) -> dict[str, Any] | None:
        while True:
            task = await self.store.get(task_id)
            remaining = deadline - time.monotonic()
            if task is None or is_finished(task) or remaining <= 0:
                return task
            await asyncio.sleep(min(POLL_S, remaining))

    def cancel(self, task_id: str, reason: str) -> None:
        """Stop running a task: its pending model call is cancelled and it fails with `reason`."""
        running = self._running.get(task_id)
        if running is not None:
            self._cancel_reasons[task_id] = reason
            running.cancel()

    def stop(self, task_id: str) -> None:
        """Stop running a task that is no longer this worker's (its row is left as it is)."""
        running = self._running.get(task_id)
        if running is not None:
            self._cancel_reasons.pop(task_id, None)
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
        started = await self.store.start(task_id, self.worker_id, self.lease_s)
        if started is None:
            return None  # deleted, or finished by another worker meanwhile
        draft = (started.get("draft") or {}).get("draft", 0)
        return await self._run(task_id, request, progress=started["progress"], draft=draft)

    async def _run(
        self,
        task_id: str,
        request: ScriptRequest,
        stored: asyncio.Future | None = None,
        progress: int = 0,
        draft: int = 0,
    ) -> dict[str, Any] | None:
        """Run a task this worker holds the lease of to its end; the finished task, or None
        when it was gone meanwhile. `stored`: the call writing the task's row, if in flight;
        `progress`, `draft`: where the task's row stands (an adopted task's never go back)."""
        lease = asyncio.create_task(self._keep_lease(task_id))
        reporter = ProgressReporter(
            functools.partial(self._write_progress, task_id, stored),
            self.progress_interval_s,
            progress,
            draft,
        )
        try:
            result = await self.pipeline.write_script(request, watcher=reporter)
            if stored is not None:
                await stored
            await reporter.close()
            finished = await self.store.complete(task_id, self.worker_id, result)
            if finished is None:
                logger.info("task %s was deleted or taken over before it finished", task_id)
            self.webhooks.notify(finished)
            return finished
        except asyncio.CancelledError:
            # Cancelled on purpose → failed with the reason; by a shutdown or a lost lease →
            # left as it is (another replica resumes it, or already has it).
            reason = self._cancel_reasons.pop(task_id, None)
            if reason is not None:
                try:
                    self.webhooks.notify(await self.store.fail(task_id, reason))
                except Exception as error:  # the lease runs out; an adopter sees it unfinished
                    logger.warning("could not mark task %s cancelled: %r", task_id, error)
            raise
        except Exception as error:
            logger.exception("task %s failed", task_id)
            failed = await self.store.fail(task_id, f"{type(error).__name__}: {error}"[:500])
            self.webhooks.notify(failed)
            return failed
        finally:
            lease.cancel()
            await reporter.close()

    async def _write_progress(
        self,
        task_id: str,
        stored: asyncio.Future | None,
        progress: int,
        stage: str,
        generated_tokens: int,
        draft: dict[str, Any] | None,
    ) -> bool:
        """One progress write (ProgressReporter throttles them); after the row exists."""
        if stored is not None:
            await asyncio.shield(stored)
        return await self.store.call(
            "set_progress", task_id, self.worker_id, progress, stage, generated_tokens, draft
        )

    def notify_finished(self, task: dict[str, Any] | None) -> None:
        """A task finished outside the runner (cancelled by a route): send its webhook."""
        self.webhooks.notify(task)

    async def _keep_lease(self, task_id: str) -> None:
        """Renew the lease every third of it. A renewal the store refuses (the task deleted,
        cancelled, finished or taken over) stops the work at once; renewals that fail (the
        store away) are retried until the lease would have run out, then the work stops too,
        since another replica may adopt the task from then on."""
        held_until = time.monotonic() + self.lease_s
        while True:
            await asyncio.sleep(self.lease_s / 3)
            asked_at = time.monotonic()
            try:
                held = await self.store.renew_lease(task_id, self.worker_id, self.lease_s)
            except Exception as error:
                if time.monotonic() < held_until:
                    logger.warning("could not renew the lease of task %s: %r", task_id, error)
                    continue
                logger.warning("task %s: lease expired while the store was away; stopping", task_id)
                self.stop(task_id)
                return
            if not held:
                logger.info("task %s is no longer this worker's; stopping its work", task_id)
                self.stop(task_id)
                return
            held_until = asked_at + self.lease_s

    async def adopt_orphans_once(self) -> list[str]:
        """Take over tasks whose worker died, each on its own: a row whose request no longer
        validates is failed with the reason and the others still run. Their ids."""
        capacity = self.max_unfinished - self.unfinished
        if capacity <= 0:
            return []
        adopted = []
        for task in await self.store.adopt_orphans(
            self.worker_id, self.lease_s, self.max_attempts, capacity
        ):
            task_id = task["task_id"]
            try:
                request = stored_request(task)
            except ValueError as error:
                logger.warning("task %s cannot run: %s", task_id, error)
                await self.store.fail(task_id, f"invalid stored request: {error}"[:500])
                continue
            logger.info("adopting task %s (attempt %d)", task_id, task["attempts"])
            self._run_in_background(task_id, functools.partial(self._resume, task_id, request))
            adopted.append(task_id)
        return adopted

    async def _adopt_orphans_forever(self) -> None:
        while True:
            try:
                await self.adopt_orphans_once()
            except Exception as error:
                logger.warning("orphan sweep failed: %r", error)
            await asyncio.sleep(self.lease_s / 2)

    async def purge_expired_once(self) -> int:
        """Delete tasks finished more than `task_retention_s` ago, in bounded batches; how many.
        A task's Idempotency-Key goes with it."""
        if self.retention_s == 0:
            return 0
        cutoff = time.time() - self.retention_s
        deleted = 0
        for _ in range(PURGE_MAX_BATCHES):
            batch = await self.store.purge_finished_before(cutoff, PURGE_BATCH)
            deleted += batch
            if batch < PURGE_BATCH:
                break
        if deleted:
            logger.info("deleted %d tasks finished before the retention period", deleted)
        return deleted

    async def _purge_expired_forever(self) -> None:
        interval = min(PURGE_INTERVAL_S, max(1.0, self.retention_s / 10))
        while self.retention_s:
            with contextlib.suppress(Exception):  # the store away: the next round catches up
                await self.purge_expired_once()
            await asyncio.sleep(interval)


def request_digest(request: ScriptRequest, callback_url: str | None = None) -> str:
    """What "the same request body" means for an Idempotency-Key: the validated request (and
    its callback_url, when it has one)."""
    body = request.model_dump(mode="json")
    if callback_url is not None:
        body["callback_url"] = callback_url
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def is_finished(task: dict[str, Any]) -> bool:
    return task["status"] in (TaskStatus.COMPLETED, TaskStatus.FAILED)
