"""Edit jobs: scene regeneration, a written insert and refine run as tasks do (issue 13, item 4).

An edit the model (or the fallback) writes is accepted as a row of `edits` (serve_app/store/
edits.py) before the client hears 202, then run in the background of the accepting ingress
replica under a lease it renews. A replica that dies leaves the lease to run out, and any
replica's sweep adopts the edit and runs it again from the start (its revision was never
stored: `finish_edit` stores it in the same transaction that completes the edit, and only for
the worker holding it). `?wait=true` waits for it, bounded by `sync_wait_timeout_s`.

Hand-written next to serve_app/tasks.py's TaskRunner rather than sharing its lease loop:
that module is being changed for streamed progress, and an edit has no progress of its own,
no cache, no webhook and no at-hand answer; the lease rules are the same (renew every third of
the lease, stop when refused or when the lease would have run out).
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
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.exceptions import HTTPException

from serve_app.config import Settings
from serve_app.errors import FieldError, Overloaded, StoreUnavailable
from serve_app.pipeline import ScriptPipeline
from serve_app.protocol import EditResponse
from serve_app.scene_editing import EditLost, ModelCheck, SceneEditor
from serve_app.store_client import StoreClient
from serve_app.task_responses import as_datetime

logger = logging.getLogger("ray.serve")

IDEMPOTENCY_FIELD = "header.idempotency-key"
POLL_S = 0.25  # how often a wait on another worker's edit asks the store
FINISHED = ("completed", "failed")


class EditRunner:
    """Accepts, runs, waits for and adopts the edit jobs of one ingress replica."""

    def __init__(
        self,
        store: StoreClient,
        pipeline: ScriptPipeline,
        settings: Settings,
        model_check: ModelCheck | None = None,
        other_work: Callable[[], int] = lambda: 0,
    ):
        self.store = store
        self.pipeline = pipeline
        self.model_check = model_check
        self.lease_s = settings.task_lease_s
        self.max_attempts = settings.task_max_attempts
        self.max_unfinished = settings.max_unfinished_tasks
        self.retry_after_s = settings.overload_retry_after_s
        self.other_work = other_work  # the replica's unfinished tasks: one limit for both
        self.worker_id = f"edits-{uuid.uuid4().hex[:12]}"
        self._running: dict[str, asyncio.Task] = {}
        self._cancel_reasons: dict[str, str] = {}
        self._background: list[asyncio.Task] = []

    @property
    def unfinished(self) -> int:
        return len(self._running)

    def start_background_work(self) -> None:
        """Begin adopting edits whose worker died (needs a running event loop)."""
        self._background = [asyncio.create_task(self._adopt_orphans_forever())]

    async def submit(
        self,
        task_id: str,
        caller_owner: str | None,
        owner_filter: str | None,
        kind: str,
        params: dict[str, Any],
        if_match: int | None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Accept an edit of `task_id` and start it: the stored edit (running). What can be
        refused at once is, with nothing stored (serve_app/scene_editing.py, `check`); a
        replayed Idempotency-Key gives the edit stored first (`replayed`), a 422 when it was
        for another edit; Overloaded when this replica already holds its most unfinished
        work."""
        digest = edit_digest(task_id, kind, params, if_match)
        replay = await self._replayed(caller_owner, idempotency_key, digest)
        if replay is not None:
            return replay
        await SceneEditor(self.store, self.pipeline, owner_filter, None, self.model_check).check(
            task_id, kind, params, if_match
        )
        busy = self.unfinished + self.other_work()
        if busy >= self.max_unfinished:
            raise Overloaded(
                f"this replica already has {busy} unfinished tasks and edits (the limit is "
                f"{self.max_unfinished}); retry later",
                self.retry_after_s,
            )
        idempotency = (idempotency_key, digest) if idempotency_key else None
        edit = await self.store.call(
            "create_edit",
            uuid.uuid4().hex,
            task_id,
            caller_owner,
            kind,
            params,
            if_match,
            self.worker_id,
            self.lease_s,
            idempotency,
        )
        if edit.get("replayed"):  # a concurrent request with the same key stored it first
            return _same_request(edit, digest, idempotency_key)
        self._run_in_background(edit)
        return edit

    async def _replayed(
        self, owner: str | None, key: str | None, digest: str
    ) -> dict[str, Any] | None:
        """The edit `owner` stored under `key` before, if any (checked before the edit is, so
        a retry of an edit that has since changed the task still gets its answer)."""
        if key is None:
            return None
        edit = await self.store.call("find_edit", owner, key)
        return None if edit is None else _same_request({**edit, "replayed": True}, digest, key)

    async def get(self, task_id: str, edit_id: str, owner: str | None) -> dict[str, Any] | None:
        return await self.store.call("get_edit", task_id, edit_id, owner)

    async def list(self, task_id: str, owner: str | None) -> list[dict[str, Any]] | None:
        return await self.store.call("list_edits", task_id, owner)

    async def wait(self, edit: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """The edit once finished, or as it stands after `timeout_s`. One this replica runs is
        awaited; another worker's (a replay, an adopted edit) is read every POLL_S."""
        deadline = time.monotonic() + timeout_s
        running = self._running.get(edit["edit_id"])
        if running is not None:
            await asyncio.wait({running}, timeout=timeout_s)  # its failure is not ours
        while True:
            latest = await self.store.call("get_edit", edit["task_id"], edit["edit_id"], None)
            remaining = deadline - time.monotonic()
            if latest is None or latest["status"] in FINISHED or remaining <= 0:
                return latest or edit
            await asyncio.sleep(min(POLL_S, remaining))

    def cancel(self, edit_id: str, reason: str) -> None:
        """Stop an edit this replica runs: it fails with `reason` (the waiting client left)."""
        running = self._running.get(edit_id)
        if running is not None:
            self._cancel_reasons[edit_id] = reason
            running.cancel()

    def _run_in_background(self, edit: dict[str, Any]) -> None:
        edit_id = edit["edit_id"]
        if edit_id in self._running:
            return
        runner = asyncio.create_task(self._run(edit))
        self._running[edit_id] = runner
        runner.add_done_callback(functools.partial(self._forget, edit_id))

    def _forget(self, edit_id: str, runner: asyncio.Task) -> None:
        if self._running.get(edit_id) is runner:
            del self._running[edit_id]
        self._cancel_reasons.pop(edit_id, None)

    async def _run(self, edit: dict[str, Any]) -> None:
        """Run an edit this worker holds to its end: its revision stored, or it failed with
        the status and message a waiting client gets. Work on an edit this worker lost (the
        lease refused or run out) stops, leaving the row to its new holder."""
        edit_id, task_id = edit["edit_id"], edit["task_id"]
        lease = asyncio.create_task(self._keep_lease(edit_id))

        async def commit(task_id, script, source, note, base):
            return await self.store.call(
                "finish_edit", edit_id, self.worker_id, script, source, note, base
            )

        editor = SceneEditor(self.store, self.pipeline, None, commit, self.model_check)
        try:
            if edit.get("unreadable"):
                raise HTTPException(500, f"edit {edit_id} cannot run: {edit['unreadable']}")
            await editor.run(task_id, edit["kind"], edit["params"], edit["if_match"])
        except EditLost:
            logger.info("edit %s is no longer this worker's; its work stopped", edit_id)
        except asyncio.CancelledError:
            reason = self._cancel_reasons.pop(edit_id, None)
            if reason is not None:
                with contextlib.suppress(Exception):  # else its lease runs out, it is adopted
                    await self._fail(edit_id, reason, 409)
            raise
        except StoreUnavailable as error:  # its lease runs out and a sweep adopts it
            logger.warning("edit %s: the store is away (%s); left to be adopted", edit_id, error)
        except FieldError as error:
            await self._fail(edit_id, error.problem, 422, error.field)
        except HTTPException as error:
            await self._fail(edit_id, str(error.detail), error.status_code)
        except Exception as error:  # a bug: the waiting client gets a 500 naming it
            logger.exception("edit %s of task %s failed", edit_id, task_id)
            await self._fail(edit_id, f"{type(error).__name__}: {error}", 500)
        finally:
            lease.cancel()

    async def _fail(self, edit_id: str, error: str, status: int, field: str | None = None):
        logger.info("edit %s failed (%d): %s", edit_id, status, error)
        await self.store.call("fail_edit", edit_id, error, status, field, self.worker_id)

    def _stop(self, edit_id: str) -> None:
        running = self._running.get(edit_id)
        if running is not None:
            self._cancel_reasons.pop(edit_id, None)
            running.cancel()

    async def _keep_lease(self, edit_id: str) -> None:
        """Renew every third of the lease; stop the work when a renewal is refused, or when
        renewals failed until the lease would have run out (another replica may adopt it)."""
        held_until = time.monotonic() + self.lease_s
        while True:
            await asyncio.sleep(self.lease_s / 3)
            asked_at = time.monotonic()
            try:
                held = await self.store.call(
                    "renew_edit_lease", edit_id, self.worker_id, self.lease_s
                )
            except Exception as error:
                if time.monotonic() < held_until:
                    logger.warning("could not renew the lease of edit %s: %r", edit_id, error)
                    continue
                held = False
            if not held:
                self._stop(edit_id)
                return
            held_until = asked_at + self.lease_s

    async def adopt_orphans_once(self) -> list[str]:
        """Take over edits whose worker died (their lease ran out); their ids."""
        capacity = self.max_unfinished - self.unfinished - self.other_work()
        if capacity <= 0:
            return []
        adopted = await self.store.call(
            "adopt_orphan_edits", self.worker_id, self.lease_s, self.max_attempts, capacity
        )
        for edit in adopted:
            logger.info("adopting edit %s (attempt %d)", edit["edit_id"], edit["attempts"])
            self._run_in_background(edit)
        return [edit["edit_id"] for edit in adopted]

    async def _adopt_orphans_forever(self) -> None:
        while True:
            try:
                await self.adopt_orphans_once()
            except Exception as error:
                logger.warning("edit orphan sweep failed: %r", error)
            await asyncio.sleep(self.lease_s / 2)


def edit_digest(task_id: str, kind: str, params: dict[str, Any], if_match: int | None) -> str:
    """What "the same edit" means for an Idempotency-Key: task, kind, parameters, If-Match."""
    body = {"task_id": task_id, "kind": kind, "params": params, "if_match": if_match}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _same_request(edit: dict[str, Any], digest: str, key: str | None) -> dict[str, Any]:
    if edit["request_digest"] != digest:
        raise FieldError(
            IDEMPOTENCY_FIELD,
            f"{key!r} was used before with a different edit; send a new key for a new edit",
        )
    return edit


def is_finished(edit: dict[str, Any]) -> bool:
    return edit["status"] in FINISHED


def to_edit_response(edit: dict[str, Any]) -> EditResponse:
    """A stored edit as the HTTP contract shows it."""
    params = edit.get("params") or {}
    return EditResponse(
        edit_id=edit["edit_id"],
        task_id=edit["task_id"],
        kind=edit["kind"],
        status=edit["status"],
        scene_number=params.get("scene_number"),
        position=params.get("position"),
        instruction=params.get("instruction"),
        if_match=edit.get("if_match"),
        revision=edit.get("revision"),
        revision_source=edit.get("source"),
        revision_note=edit.get("note"),
        error="; ".join(filter(None, [edit.get("error"), edit.get("unreadable")])) or None,
        error_status=edit.get("error_status"),
        attempts=edit["attempts"],
        created_at=as_datetime(edit["created_at"]),
        started_at=as_datetime(edit.get("started_at")),
        completed_at=as_datetime(edit.get("completed_at")),
    )


def model_check_of(model_status: Callable[[], Awaitable[dict[str, Any]]]) -> ModelCheck:
    """Why the model cannot take a refine now (None: loaded), from the replica's cached model
    status (routes/health.py's ModelHealth, asked at most once a second)."""

    async def check() -> str | None:
        try:
            status = await model_status()
        except Exception as error:
            return f"ChatGLM deployment unreachable: {type(error).__name__}"
        return None if status.get("loaded") else (status.get("reason") or "not loaded")

    return check
