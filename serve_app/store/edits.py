"""Edit jobs: a scene regeneration, a written insert or a refine of a finished storyboard, kept
as a row of `edits` from the moment it is accepted until it has stored its revision.

An edit runs as a task does: under a lease its worker renews; a worker that dies leaves the
lease to run out and any ingress replica adopts the edit (or fails it after `max_attempts`).
Its revision is stored in the same transaction that marks it completed, and only while its
worker still holds it, so an edit taken over by another worker never stores twice. An
Idempotency-Key is unique per owner (an index decides, as for tasks).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Literal

import sqlalchemy as sa

from serve_app.store.schema import UNFINISHED, edits, tasks

FinishOutcome = Literal["added", "missing", "not_completed", "conflict", "lost"]


class TaskEdits:
    """The edit-job methods of TaskStore (serve_app/store/tasks.py), which provides `_read`,
    `_write`, `_insert` and `_add_revision_in` (serve_app/store/revisions.py)."""

    _read: Callable[[], Any]
    _write: Callable[[], Any]
    _insert: Callable[..., Any]
    _add_revision_in: Callable[..., Any]

    def create_edit(
        self,
        edit_id: str,
        task_id: str,
        owner: str | None,
        kind: str,
        params: dict[str, Any],
        if_match: int | None,
        worker_id: str,
        lease_s: float,
        idempotency: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """A new edit of `task_id`, already running under `worker_id`'s lease. With
        `idempotency` (the key and the request's digest), an edit the owner stored under that
        key before is returned instead (`replayed: True`) and nothing is written."""
        now = time.time()
        key, digest = idempotency or (None, None)
        values = {
            "edit_id": edit_id,
            "task_id": task_id,
            "owner": owner,
            "kind": kind,
            "params_json": json.dumps(params, ensure_ascii=False),
            "if_match": if_match,
            "status": "running",
            "worker_id": worker_id,
            "lease_until": now + lease_s,
            "attempts": 1,
            "created_at": now,
            "started_at": now,
            "idempotency_key": key,
            "request_digest": digest,
        }
        statement = self._insert(edits).values(values).on_conflict_do_nothing().returning(edits)
        with self._write() as connection:
            row = connection.execute(statement).first()
        if row is not None:
            return edit_of(row)
        existing = self.find_edit(owner, key) if key is not None else None
        if existing is not None:
            return {**existing, "replayed": True}
        raise RuntimeError(f"an edit with id {edit_id} is already stored")

    def find_edit(self, owner: str | None, idempotency_key: str) -> dict[str, Any] | None:
        """The edit `owner` stored under `idempotency_key`, if any."""
        with self._read() as connection:
            row = connection.execute(
                sa.select(edits).where(
                    sa.func.coalesce(edits.c.owner, "") == (owner or ""),
                    edits.c.idempotency_key == idempotency_key,
                )
            ).first()
        return None if row is None else edit_of(row)

    def get_edit(
        self, task_id: str, edit_id: str, owner: str | None = None
    ) -> dict[str, Any] | None:
        """The edit, if it is of `task_id` and `owner` may see that task (None: any owner)."""
        with self._read() as connection:
            row = connection.execute(
                _visible(owner).where(edits.c.edit_id == edit_id, edits.c.task_id == task_id)
            ).first()
        return None if row is None else edit_of(row)

    def list_edits(
        self, task_id: str, owner: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]] | None:
        """The task's edits, newest first (at most `limit`); None when `owner` may not see it."""
        from serve_app.store.tasks import owned_by

        with self._read() as connection:
            seen = connection.execute(
                sa.select(tasks.c.task_id).where(tasks.c.task_id == task_id, *owned_by(owner))
            ).first()
            if seen is None:
                return None
            rows = connection.execute(
                sa.select(edits)
                .where(edits.c.task_id == task_id)
                .order_by(edits.c.created_at.desc())
                .limit(limit)
            ).all()
        return [edit_of(row) for row in rows]

    def renew_edit_lease(self, edit_id: str, worker_id: str, lease_s: float) -> bool:
        """False when the edit is gone, finished or another worker's: stop working on it."""
        with self._write() as connection:
            renewed = connection.execute(
                sa.update(edits)
                .where(*_held_by(edit_id, worker_id))
                .values(lease_until=time.time() + lease_s)
            )
        return renewed.rowcount == 1

    def adopt_orphan_edits(
        self, worker_id: str, lease_s: float, max_attempts: int, limit: int = 32
    ) -> list[dict[str, Any]]:
        """Hand unfinished edits whose lease ran out to `worker_id` (attempts + 1), failing the
        ones out of tries; the rows are locked while taken (PostgreSQL skips rows another sweep
        holds), so two sweeps never take one edit."""
        now = time.time()
        adopted = []
        with self._write() as connection:
            rows = connection.execute(
                sa.select(edits.c.edit_id, edits.c.attempts)
                .where(edits.c.status.in_(UNFINISHED), edits.c.lease_until < now)
                .order_by(edits.c.created_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for edit_id, attempts in rows:
                if attempts >= max_attempts:
                    reason = f"abandoned: the worker died on each of {attempts} attempts"
                    connection.execute(
                        _failing(reason, 503, None, now).where(edits.c.edit_id == edit_id)
                    )
                    continue
                row = connection.execute(
                    sa.update(edits)
                    .where(edits.c.edit_id == edit_id)
                    .values(
                        status="running",
                        worker_id=worker_id,
                        lease_until=now + lease_s,
                        attempts=edits.c.attempts + 1,
                    )
                    .returning(edits)
                ).one()
                adopted.append(edit_of(row))
        return adopted

    def finish_edit(
        self,
        edit_id: str,
        worker_id: str,
        script: dict[str, Any],
        source: str,
        note: str,
        base_revision: int,
    ) -> tuple[FinishOutcome, dict[str, Any] | None]:
        """Store `script` as the next revision of the edit's task and mark the edit completed,
        in one transaction, if `worker_id` still holds the edit and the task is still at
        `base_revision`: ("added", the task now); ("lost", None) when the edit is no longer
        this worker's (nothing stored); else add_revision's outcome, the edit left running."""
        with self._write() as connection:
            held = connection.execute(
                sa.select(edits.c.task_id).where(*_held_by(edit_id, worker_id)).with_for_update()
            ).first()
            if held is None:
                return "lost", None
            outcome, task = self._add_revision_in(
                connection, held.task_id, None, script, source, note, base_revision
            )
            if outcome == "added":
                connection.execute(
                    sa.update(edits)
                    .where(edits.c.edit_id == edit_id)
                    .values(
                        status="completed",
                        completed_at=time.time(),
                        lease_until=None,
                        revision=task["revision"],
                        source=source,
                        note=note,
                    )
                )
        return outcome, task

    def fail_edit(
        self,
        edit_id: str,
        error: str,
        status: int,
        field: str | None = None,
        worker_id: str | None = None,
    ) -> dict[str, Any] | None:
        """Fail an unfinished edit with `error` and the HTTP `status` (and `field`, for a 422)
        a waiting client is answered with; only while `worker_id` holds it, when given. The
        failed edit, or None when it is gone, finished or another worker's."""
        conditions = _held_by(edit_id, worker_id) if worker_id else (edits.c.edit_id == edit_id,)
        with self._write() as connection:
            row = connection.execute(
                _failing(error[:500], status, field, time.time())
                .where(*conditions)
                .returning(edits)
            ).first()
        return None if row is None else edit_of(row)


def _visible(owner: str | None) -> sa.Select:
    """Edits of the tasks `owner` may see (None: all)."""
    from serve_app.store.tasks import owned_by

    return sa.select(edits).join(tasks, tasks.c.task_id == edits.c.task_id).where(*owned_by(owner))


def _held_by(edit_id: str, worker_id: str) -> tuple:
    return (
        edits.c.edit_id == edit_id,
        edits.c.worker_id == worker_id,
        edits.c.status.in_(UNFINISHED),
    )


def _failing(error: str, status: int, field: str | None, now: float) -> sa.Update:
    return (
        sa.update(edits)
        .where(edits.c.status.in_(UNFINISHED))
        .values(
            status="failed",
            error=error,
            error_status=status,
            error_field=field,
            completed_at=now,
            lease_until=None,
        )
    )


def edit_of(row: sa.Row) -> dict[str, Any]:
    """A row as a dict, its parameters decoded (an undecodable one as {} with `unreadable`)."""
    edit = dict(row._mapping)
    try:
        edit["params"] = json.loads(edit.pop("params_json"))
    except ValueError as error:
        edit["params"], edit["unreadable"] = {}, f"stored params are not JSON ({error})"
    return edit
