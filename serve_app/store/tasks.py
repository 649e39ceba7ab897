"""The task store on SQLAlchemy Core: the same statements on SQLite and PostgreSQL.

Each unfinished task carries a lease: the ingress replica working on it renews it, and when a
worker dies its lease runs out and another replica adopts the task (or fails it after
`max_attempts`), so no task stays `running` forever and nothing accepted is lost. Adoption
locks the rows it takes (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the write lock on SQLite), so
two replicas sweeping at once never take the same task.

A task records its owner (a key id, serve_app/security.py) and, when the client sent one, its
Idempotency-Key: unique per owner by an index, so two requests with one key make one task
(`INSERT ... ON CONFLICT DO NOTHING`, the loser reads the stored one). Finished tasks are
deleted after the retention period (`purge_finished_before`). How many scripts each path wrote
is counted by triggers in the statement that stores the script, so the status route reads a
handful of rows instead of scanning every task.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Engine

from deployments.storyboard.constants import SCRIPT_SOURCES
from serve_app.store.database import create_engine, store_url, upgrade
from serve_app.store.edits import TaskEdits
from serve_app.store.revisions import TaskRevisions
from serve_app.store.schema import FINISHED, UNFINISHED, script_counts, tasks


class TaskIdTaken(RuntimeError):
    """A new task's id is already stored (ids are random: a caller's bug, never a client's)."""


class TaskStore(TaskRevisions, TaskEdits):
    """Task rows in SQLite or PostgreSQL; thread-safe; returns plain dicts.

    `TaskStore(path)` opens (or makes) a SQLite file, as the store always did;
    `TaskStore("postgresql://...", password=...)` a PostgreSQL database. The schema is brought to
    this code's version on open (serve_app/store/migrations); a newer one is refused.
    SQLite `synchronous=FULL`: a task the client heard 202 for survives a power loss, not only
    a process crash (README, "Task store", has the measured cost).
    """

    def __init__(
        self,
        url: str | Path | URL,
        synchronous: str = "FULL",
        password: str | None = None,
        pool_size: int = 8,
    ):
        self.url = url if isinstance(url, URL) else store_url(url, password)
        self.backend = self.url.get_backend_name()
        self.path = Path(self.url.database) if self.backend == "sqlite" else None
        self.synchronous = synchronous
        self.engine: Engine = create_engine(self.url, pool_size, synchronous)
        self.schema_revision = upgrade(self.engine)
        dialect = postgresql if self.backend == "postgresql" else sqlite
        self._insert = dialect.insert

    # Progress writes skip the wait for the disk (False: as durable as accepted work; the
    # benchmark compares both).
    relaxed_progress_writes = True

    def close(self) -> None:
        self.engine.dispose()

    # Transactions: `write` ones take SQLite's write lock at BEGIN (BEGIN IMMEDIATE); reads do
    # not. PostgreSQL runs both at READ COMMITTED and locks rows where it must (FOR UPDATE).
    def _write(self) -> Any:
        return self.engine.execution_options(write=True).begin()

    def _read(self) -> Any:
        return self.engine.execution_options(write=False).begin()

    def _insert_once(
        self, values: dict[str, Any], owner: str | None, idempotency_key: str | None
    ) -> dict[str, Any]:
        """Insert a task unless the owner stored one under the Idempotency-Key already: the new
        task, or the stored one (`replayed: True`). The unique index decides, so two concurrent
        requests with one key store one task."""
        statement = self._insert(tasks).values(values).on_conflict_do_nothing().returning(tasks)
        with self._write() as connection:
            row = connection.execute(statement).first()
        if row is not None:
            return row_to_task(row)
        if idempotency_key is not None:
            with self._read() as connection:
                existing = connection.execute(
                    sa.select(tasks).where(
                        sa.func.coalesce(tasks.c.owner, "") == (owner or ""),
                        tasks.c.idempotency_key == idempotency_key,
                    )
                ).first()
            if existing is not None:
                return {**row_to_task(existing), "replayed": True}
        raise TaskIdTaken(f"a task with id {values['task_id']} is already stored")

    def create_running(
        self,
        task_id: str,
        request: dict[str, Any],
        worker_id: str,
        lease_s: float,
        notes: list[str] | tuple[str, ...] = (),
        owner: str | None = None,
        idempotency: tuple[str, str] | None = None,
        callback_url: str | None = None,
    ) -> dict[str, Any]:
        """A new task, already running under `worker_id`'s lease (the accepting replica runs it
        at once: one call instead of create + start). `idempotency`: the client's
        Idempotency-Key and the digest of its request; a task stored under that key before is
        returned instead (`replayed`), and nothing is written."""
        now = time.time()
        key, digest = idempotency or (None, None)
        values = {
            "task_id": task_id,
            "status": "running",
            "progress": 10,
            "request_json": _json(request),
            "attempts": 1,
            "worker_id": worker_id,
            "lease_until": now + lease_s,
            "created_at": now,
            "started_at": now,
            "notes_json": _json(list(notes)),
            "owner": owner,
            "idempotency_key": key,
            "request_digest": digest,
            **_webhook_columns(callback_url),
        }
        return self._insert_once(values, owner, key)

    def create_completed(
        self,
        request: dict[str, Any],
        worker_id: str,
        outcome: dict[str, Any],
        notes: list[str] | tuple[str, ...] = (),
        owner: str | None = None,
        idempotency: tuple[str, str] | None = None,
        callback_url: str | None = None,
    ) -> dict[str, Any]:
        """A new task that is already finished (a script the ingress had at hand), in one call;
        `idempotency` as in `create_running`."""
        now = time.time()
        key, digest = idempotency or (None, None)
        values = {
            "task_id": uuid.uuid4().hex,
            "status": "completed",
            "progress": 100,
            "request_json": _json(request),
            **_outcome_columns(outcome),
            "attempts": 1,
            "worker_id": worker_id,
            "created_at": now,
            "started_at": now,
            "completed_at": now,
            "notes_json": _json(list(notes)),
            "owner": owner,
            "idempotency_key": key,
            "request_digest": digest,
            **_webhook_columns(callback_url),
        }
        return self._insert_once(values, owner, key)

    def get(
        self, task_id: str, owner: str | None = None, revision: int | None = None
    ) -> dict[str, Any] | None:
        """The task, if `owner` may see it (None: any owner), showing `revision` of its script
        (None: the latest; one it never had: `result` None, `unknown_revision` set)."""
        with self._read() as connection:
            row = connection.execute(
                sa.select(tasks).where(tasks.c.task_id == task_id, *owned_by(owner))
            ).first()
            if row is None:
                return None
            return self.get_revision(row_to_task(row), revision, connection)

    def list_tasks(
        self, status: str | None, skip: int, limit: int, owner: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the tasks `owner` may see (None: all), newest first, and their total."""
        conditions = [*owned_by(owner), *([tasks.c.status == status] if status else [])]
        with self._read() as connection:
            total = connection.execute(
                sa.select(sa.func.count()).select_from(tasks).where(*conditions)
            ).scalar_one()
            rows = connection.execute(
                sa.select(tasks)
                .where(*conditions)
                .order_by(tasks.c.created_at.desc())
                .limit(limit)
                .offset(skip)
            ).all()
        return [row_to_task(row) for row in rows], total

    def delete(self, task_id: str, owner: str | None = None) -> bool:
        with self._write() as connection:
            deleted = connection.execute(
                sa.delete(tasks).where(tasks.c.task_id == task_id, *owned_by(owner))
            )
        return deleted.rowcount == 1

    def cancel(
        self, task_id: str, reason: str, owner: str | None = None
    ) -> tuple[str, dict[str, Any] | None]:
        """Fail an unfinished task with `reason`: ("cancelled", the failed task), or
        ("finished", the task as it was) when it had already finished, or ("missing", None)."""
        with self._write() as connection:
            row = connection.execute(
                _failing(reason, time.time())
                .where(tasks.c.task_id == task_id, *owned_by(owner))
                .returning(tasks)
            ).first()
            if row is not None:
                return "cancelled", row_to_task(row)
            current = connection.execute(
                sa.select(tasks).where(tasks.c.task_id == task_id, *owned_by(owner))
            ).first()
        return ("missing", None) if current is None else ("finished", row_to_task(current))

    def start(self, task_id: str, worker_id: str, lease_s: float) -> dict[str, Any] | None:
        """Mark an adopted task running under `worker_id`; None when it is gone or finished.
        Its progress stays where the last worker left it (it never goes back)."""
        now = time.time()
        return self._returning(
            sa.update(tasks)
            .where(tasks.c.task_id == task_id, tasks.c.status.in_(UNFINISHED))
            .values(
                status="running",
                stage="queued",
                progress=sa.case((tasks.c.progress < 10, 10), else_=tasks.c.progress),
                attempts=tasks.c.attempts + 1,
                worker_id=worker_id,
                lease_until=now + lease_s,
                started_at=sa.func.coalesce(tasks.c.started_at, now),
            )
        )

    def renew_lease(self, task_id: str, worker_id: str, lease_s: float) -> bool:
        """False when the task is gone, finished or held by another worker: stop working on it."""
        with self._write() as connection:
            renewed = connection.execute(
                sa.update(tasks)
                .where(*_held_by(task_id, worker_id))
                .values(lease_until=time.time() + lease_s)
            )
        return renewed.rowcount == 1

    def set_progress(
        self,
        task_id: str,
        worker_id: str,
        progress: int,
        stage: str,
        generated_tokens: int,
        draft: dict[str, Any] | None = None,
    ) -> bool:
        """Record where a running task is (and `draft`, the scenes of the reply being
        generated: `{"draft": n, "scenes": [...]}`, when given); False when it is not
        `worker_id`'s unfinished task any more, or already further along (progress never goes
        back). Written without waiting for the disk (`_advisory_write`): progress is not
        accepted work."""
        values: dict[str, Any] = {
            "progress": progress,
            "stage": stage,
            "generated_tokens": generated_tokens,
        }
        if draft is not None:
            values["draft_json"] = _json(draft)
        with self._advisory_write() as connection:
            updated = connection.execute(
                sa.update(tasks)
                .where(*_held_by(task_id, worker_id), tasks.c.progress <= progress)
                .values(values)
            )
        return updated.rowcount == 1

    @contextlib.contextmanager
    def _advisory_write(self) -> Iterator[sa.Connection]:
        """A write transaction whose commit does not wait for the disk: PostgreSQL
        `SET LOCAL synchronous_commit TO OFF` (this transaction only); SQLite, whose
        `synchronous` is per connection, runs it at NORMAL on the one connection and puts FULL
        back after it. In WAL mode a power loss may lose such a commit (never corrupt the
        file), and the next FULL commit syncs the WAL with it. BENCHMARKS.md has the cost."""
        if not self.relaxed_progress_writes:
            with self._write() as connection:
                yield connection
            return
        if self.backend == "postgresql":
            with self._write() as connection:
                connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                yield connection
            return
        if self.synchronous not in ("FULL", "EXTRA"):
            with self._write() as connection:
                yield connection
            return
        with self.engine.connect() as connection:
            raw = connection.connection.dbapi_connection  # no autobegin: BEGIN comes next
            raw.execute("PRAGMA synchronous = NORMAL")
            try:
                with connection.begin():
                    yield connection
            finally:
                try:
                    raw.execute(f"PRAGMA synchronous = {self.synchronous}")
                except Exception:
                    connection.invalidate()  # never hand out a connection left at NORMAL
                    raise

    def record_webhook(
        self,
        task_id: str,
        state: str,
        attempts: int,
        last_status: int | None,
        last_error: str | None,
    ) -> bool:
        """Record how the task's webhook went (after each attempt); False when it is gone."""
        with self._write() as connection:
            updated = connection.execute(
                sa.update(tasks)
                .where(tasks.c.task_id == task_id, tasks.c.callback_url.is_not(None))
                .values(
                    webhook_state=state,
                    webhook_attempts=attempts,
                    webhook_last_status=last_status,
                    webhook_last_error=last_error,
                )
            )
        return updated.rowcount == 1

    def complete(
        self, task_id: str, worker_id: str, outcome: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Store a finished script and return the finished task; None when the task was
        deleted or taken over meanwhile."""
        return self._returning(
            sa.update(tasks)
            .where(*_held_by(task_id, worker_id))
            .values(
                status="completed",
                progress=100,
                completed_at=time.time(),
                lease_until=None,
                **_outcome_columns(outcome),
            )
        )

    def fail(self, task_id: str, error: str) -> dict[str, Any] | None:
        """Mark an unfinished task failed and return it; None when it is gone or finished."""
        return self._returning(_failing(error, time.time()).where(tasks.c.task_id == task_id))

    def _returning(self, statement: sa.Update) -> dict[str, Any] | None:
        with self._write() as connection:
            row = connection.execute(statement.returning(tasks)).first()
        return None if row is None else row_to_task(row)

    def adopt_orphans(
        self, worker_id: str, lease_s: float, max_attempts: int, limit: int = 32
    ) -> list[dict[str, Any]]:
        """Hand unfinished tasks whose lease ran out to `worker_id`; fail the ones out of tries.
        Each row is returned as stored (`unreadable` says what of it could not be decoded).
        The rows are locked while taken (PostgreSQL skips rows another sweep holds), so
        concurrent sweeps never hand one task to two workers."""
        now = time.time()
        adopted = []
        with self._write() as connection:
            rows = connection.execute(
                sa.select(tasks.c.task_id, tasks.c.attempts)
                .where(tasks.c.status.in_(UNFINISHED), tasks.c.lease_until < now)
                .order_by(tasks.c.created_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for task_id, attempts in rows:
                if attempts >= max_attempts:
                    reason = f"abandoned: the worker died on each of {attempts} attempts"
                    connection.execute(_failing(reason, now).where(tasks.c.task_id == task_id))
                    continue
                row = connection.execute(
                    sa.update(tasks)
                    .where(tasks.c.task_id == task_id)
                    .values(worker_id=worker_id, lease_until=now + lease_s)
                    .returning(tasks)
                ).one()
                adopted.append(row_to_task(row))
        return adopted

    def purge_finished_before(self, cutoff: float, limit: int) -> int:
        """Delete at most `limit` tasks that finished before `cutoff` (a Unix time); how many."""
        batch = (
            sa.select(tasks.c.task_id)
            .where(tasks.c.completed_at < cutoff, tasks.c.status.in_(FINISHED))
            .limit(limit)
        )
        with self._write() as connection:
            return connection.execute(sa.delete(tasks).where(tasks.c.task_id.in_(batch))).rowcount

    def source_counts(self) -> dict[str, int]:
        """How many scripts each path wrote, and how many LLM replies failed to parse (lifetime
        totals of this database, kept by triggers: no scan of the tasks)."""
        counts = dict.fromkeys((*SCRIPT_SOURCES, "parse_failures"), 0)
        with self._read() as connection:
            for name, value in connection.execute(sa.select(script_counts)).all():
                counts[name] = value
        return counts


def owned_by(owner: str | None) -> tuple:
    """The condition for tasks `owner` may see; None = every task."""
    return () if owner is None else (tasks.c.owner == owner,)


def _held_by(task_id: str, worker_id: str) -> tuple:
    return (
        tasks.c.task_id == task_id,
        tasks.c.worker_id == worker_id,
        tasks.c.status.in_(UNFINISHED),
    )


def _failing(error: str, now: float) -> sa.Update:
    """Fail an unfinished task (add the task's own condition with .where)."""
    return (
        sa.update(tasks)
        .where(tasks.c.status.in_(UNFINISHED))
        .values(
            status="failed",
            progress=100,
            error=error,
            completed_at=now,
            lease_until=None,
            draft_json=None,
        )
    )


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def _webhook_columns(callback_url: str | None) -> dict[str, Any]:
    """callback_url, webhook_state of a new task."""
    return {"callback_url": callback_url, "webhook_state": "pending" if callback_url else None}


def _outcome_columns(outcome: dict[str, Any]) -> dict[str, Any]:
    """The columns of a written script."""
    return {
        "result_json": _json(outcome["script"]),
        "source": outcome["source"],
        "fallback_reason": outcome.get("fallback_reason"),
        "parse_failures": outcome.get("parse_failures", 0),
        "generation_ms": outcome.get("generation_ms"),
        "fallback_template": outcome.get("fallback_template"),
        "draft_json": None,  # the finished script replaces the scenes seen while generating
    }


def row_to_task(row: sa.Row) -> dict[str, Any]:
    """A row as a dict with its JSON decoded. A column that no longer decodes becomes None and
    is named in `unreadable`, so one damaged row never fails a list or a sweep."""
    task = dict(row._mapping)
    problems: list[str] = []
    task["request"] = _decoded(task.pop("request_json"), "request", problems)
    task["result"] = _decoded(task.pop("result_json"), "result", problems)
    task["notes"] = _decoded(task.pop("notes_json"), "notes", problems) or []
    # Advisory: a draft that no longer decodes is no draft, never an unreadable task.
    task["draft"] = _decoded(task.pop("draft_json", None), "draft", [])
    # A finished script is revision 1 until edited (and in files written before revisions).
    has_script = task["result"] is not None or task["status"] == "completed"
    task["revision"] = (task.get("revision") or 1) if has_script else None
    task["revision_source"] = task.get("revision_source") or (
        task["source"] if has_script else None
    )
    if problems:
        task["unreadable"] = "; ".join(problems)
    return task


def _decoded(text: str | None, name: str, problems: list[str]) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as error:
        problems.append(f"stored {name} is not JSON ({error})")
        return None
