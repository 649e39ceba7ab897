"""Tasks in SQLite, behind one single-replica deployment that every ingress replica shares.

Each unfinished task carries a lease: the ingress replica working on it renews it, and when a
worker dies its lease runs out and another replica adopts the task (or fails it after
`max_attempts`), so no task stays `running` forever and nothing accepted is lost.

A task records its owner (a key id, serve_app/security.py) and, when the client sent one, its
Idempotency-Key: unique per owner by an index, so two requests with one key make one task.
Finished tasks are deleted after the retention period (`purge_finished_before`). How many
scripts each path wrote is counted by triggers in the statement that stores the script, so the
status route reads a handful of rows instead of scanning every task.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from ray import serve

from deployments.replica_options import SYNC_METHODS_ON_THE_EVENT_LOOP
from deployments.storyboard.constants import SCRIPT_SOURCES
from serve_app.task_revisions import REVISION_COLUMNS, REVISIONS_SCHEMA, TaskRevisions

UNFINISHED = "status IN ('pending', 'running')"  # SQL: a task nobody has finished yet
FINISHED = "status IN ('completed', 'failed')"
BUSY_TIMEOUT_MS = 2000  # a write waiting this long for the file's lock fails (→ 503)

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    progress INTEGER NOT NULL DEFAULT 0,
    request_json TEXT NOT NULL,
    result_json TEXT,
    source TEXT,
    fallback_reason TEXT,
    parse_failures INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker_id TEXT,
    lease_until REAL,
    created_at REAL NOT NULL,
    started_at REAL,
    completed_at REAL,
    generation_ms REAL,
    fallback_template TEXT,
    notes_json TEXT,
    owner TEXT,
    idempotency_key TEXT,
    request_digest TEXT
);
CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (status, created_at);
CREATE INDEX IF NOT EXISTS tasks_by_created ON tasks (created_at);
"""
# Columns added after the first release: a file written before them gets them on open.
ADDED_COLUMNS = {
    "fallback_template": "TEXT",
    "notes_json": "TEXT",
    "owner": "TEXT",
    "idempotency_key": "TEXT",
    "request_digest": "TEXT",
    **REVISION_COLUMNS,
    # Task events (issue 12): the pipeline's stage and the tokens generated so far, written by
    # the runner at stage changes and at most every task_progress_interval_s while generating.
    "stage": "TEXT",
    "generated_tokens": "INTEGER NOT NULL DEFAULT 0",
    # Webhooks (issue 12): where to POST the finished task, and how that went.
    "callback_url": "TEXT",
    "webhook_state": "TEXT",
    "webhook_attempts": "INTEGER NOT NULL DEFAULT 0",
    "webhook_last_status": "INTEGER",
    "webhook_last_error": "TEXT",
}
# Indexes on added columns: created once those columns exist.
INDEXES = """
CREATE INDEX IF NOT EXISTS tasks_by_owner ON tasks (owner, created_at);
CREATE INDEX IF NOT EXISTS tasks_by_completion ON tasks (completed_at)
    WHERE completed_at IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS tasks_by_idempotency_key
    ON tasks (COALESCE(owner, ''), idempotency_key) WHERE idempotency_key IS NOT NULL;
"""
IDEMPOTENT_TASK = "SELECT * FROM tasks WHERE COALESCE(owner, '') = ? AND idempotency_key = ?"
# Scripts written, by path: a row per source plus parse_failures; lifetime totals (deleting a
# task does not lower them). Kept by the triggers in the statement that stores a script.
COUNTER_TRIGGER = """
CREATE TRIGGER {name} AFTER {event} ON tasks WHEN {condition} BEGIN
    INSERT INTO script_counts (name, value) VALUES (NEW.source, 1)
        ON CONFLICT (name) DO UPDATE SET value = value + 1;
    UPDATE script_counts SET value = value + NEW.parse_failures WHERE name = 'parse_failures';
END
"""
COUNTERS = (
    "CREATE TABLE script_counts (name TEXT PRIMARY KEY, value INTEGER NOT NULL DEFAULT 0)",
    COUNTER_TRIGGER.format(
        name="count_scripts_stored_finished", event="INSERT", condition="NEW.source IS NOT NULL"
    ),
    COUNTER_TRIGGER.format(
        name="count_scripts_completed",
        event="UPDATE OF source",
        condition="NEW.source IS NOT NULL AND OLD.source IS NULL",
    ),
    # A file written before the counters: its scripts counted once, in the same transaction.
    "INSERT INTO script_counts (name, value) SELECT source, COUNT(*) FROM tasks"
    " WHERE source IS NOT NULL GROUP BY source",
    "INSERT INTO script_counts (name, value) SELECT 'parse_failures',"
    " COALESCE(SUM(parse_failures), 0) FROM tasks WHERE source IS NOT NULL",
)


class TaskStore(TaskRevisions):
    """Task rows in one SQLite file (WAL mode); thread-safe; returns plain dicts.

    `synchronous=FULL`: a task the client heard 202 for survives a power loss, not only a
    process crash (README, "Task store", has the measured cost).
    """

    def __init__(self, path: str | Path, synchronous: str = "FULL"):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1e3
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(SCHEMA)
        self._add_missing_columns()
        self._db.executescript(INDEXES)
        self._db.executescript(REVISIONS_SCHEMA)
        self._add_counters_once()

    @staticmethod
    def _row_to_task(row: sqlite3.Row) -> dict[str, Any]:
        return row_to_task(row)

    def _add_missing_columns(self) -> None:
        present = {row["name"] for row in self._db.execute("PRAGMA table_info(tasks)")}
        for column, kind in ADDED_COLUMNS.items():
            if column not in present:
                self._db.execute(f"ALTER TABLE tasks ADD COLUMN {column} {kind}")

    def _add_counters_once(self) -> None:
        """The counters table and its triggers, made once per file (in one transaction)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            exists = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'script_counts'"
            ).fetchone()
            if not exists:
                for statement in COUNTERS:
                    self._db.execute(statement)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _execute(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, params)

    def _returning(self, sql: str, params: tuple) -> dict[str, Any] | None:
        """The row a `... RETURNING *` statement wrote, or None when it wrote none."""
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()  # all: ends the statement
        return row_to_task(rows[0]) if rows else None

    def _insert_once(
        self, sql: str, params: tuple, owner: str | None, idempotency_key: str | None
    ) -> dict[str, Any]:
        """Run an `INSERT ... ON CONFLICT DO NOTHING RETURNING *`: the new task, or the one the
        owner already stored under the Idempotency-Key (`replayed: True`). The unique index
        decides, so two concurrent requests with one key store one task."""
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
            existing = (
                None
                if rows or idempotency_key is None
                else self._db.execute(IDEMPOTENT_TASK, (owner or "", idempotency_key)).fetchone()
            )
        if rows:
            return row_to_task(rows[0])
        if existing is None:
            raise sqlite3.IntegrityError("a task with this id is already stored")
        return {**row_to_task(existing), "replayed": True}

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
        return self._insert_once(
            "INSERT INTO tasks (task_id, status, progress, request_json, attempts, worker_id,"
            " lease_until, created_at, started_at, notes_json, owner, idempotency_key,"
            " request_digest, callback_url, webhook_state)"
            " VALUES (?, 'running', 10, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING RETURNING *",
            (
                task_id,
                _json(request),
                worker_id,
                now + lease_s,
                now,
                now,
                _json(list(notes)),
                owner,
                key,
                digest,
                *_webhook_columns(callback_url),
            ),
            owner,
            key,
        )

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
        return self._insert_once(
            "INSERT INTO tasks (task_id, status, progress, request_json, result_json, source,"
            " fallback_reason, parse_failures, generation_ms, fallback_template, attempts,"
            " worker_id, created_at, started_at, completed_at, notes_json, owner,"
            " idempotency_key, request_digest, callback_url, webhook_state)"
            " VALUES (?, 'completed', 100, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING RETURNING *",
            (
                uuid.uuid4().hex,
                _json(request),
                *_outcome_columns(outcome),
                worker_id,
                now,
                now,
                now,
                _json(list(notes)),
                owner,
                key,
                digest,
                *_webhook_columns(callback_url),
            ),
            owner,
            key,
        )

    def get(
        self, task_id: str, owner: str | None = None, revision: int | None = None
    ) -> dict[str, Any] | None:
        """The task, if `owner` may see it (None: any owner), showing `revision` of its script
        (None: the latest; one it never had: `result` None, `unknown_revision` set)."""
        condition, params = owned_by(owner)
        row = self._execute(
            "SELECT * FROM tasks WHERE task_id = ?" + condition, (task_id, *params)
        ).fetchone()
        if row is None:
            return None
        return self.get_revision(row_to_task(row), revision)

    def list_tasks(
        self, status: str | None, skip: int, limit: int, owner: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the tasks `owner` may see (None: all), newest first, and their total."""
        conditions, params = ["1"], []
        if status:
            conditions.append("status = ?")
            params.append(status)
        if owner is not None:
            conditions.append("owner = ?")
            params.append(owner)
        where = "WHERE " + " AND ".join(conditions)
        total = self._execute(f"SELECT COUNT(*) FROM tasks {where}", tuple(params)).fetchone()[0]
        rows = self._execute(
            f"SELECT * FROM tasks {where} ORDER BY created_at DESC LIMIT ? OFFSET ?",
            (*params, limit, skip),
        ).fetchall()
        return [row_to_task(row) for row in rows], total

    def delete(self, task_id: str, owner: str | None = None) -> bool:
        condition, params = owned_by(owner)
        return (
            self._execute(
                "DELETE FROM tasks WHERE task_id = ?" + condition, (task_id, *params)
            ).rowcount
            == 1
        )

    def cancel(
        self, task_id: str, reason: str, owner: str | None = None
    ) -> tuple[str, dict[str, Any] | None]:
        """Fail an unfinished task with `reason`: ("cancelled", the failed task), or
        ("finished", the task as it was) when it had already finished, or ("missing", None)."""
        condition, params = owned_by(owner)
        with self._lock:
            rows = self._db.execute(
                "UPDATE tasks SET status = 'failed', progress = 100, error = ?, completed_at = ?,"
                " lease_until = NULL WHERE task_id = ? AND "
                + UNFINISHED
                + condition
                + " RETURNING *",
                (reason, time.time(), task_id, *params),
            ).fetchall()
            current = (
                rows[0]
                if rows
                else self._db.execute(
                    "SELECT * FROM tasks WHERE task_id = ?" + condition, (task_id, *params)
                ).fetchone()
            )
        if current is None:
            return "missing", None
        return ("cancelled" if rows else "finished"), row_to_task(current)

    def start(self, task_id: str, worker_id: str, lease_s: float) -> dict[str, Any] | None:
        """Mark an adopted task running under `worker_id`; None when it is gone or finished.
        Its progress stays where the last worker left it (it never goes back)."""
        now = time.time()
        return self._returning(
            "UPDATE tasks SET status = 'running', stage = 'queued',"
            " progress = CASE WHEN progress < 10 THEN 10 ELSE progress END,"
            " attempts = attempts + 1,"
            " worker_id = ?, lease_until = ?, started_at = COALESCE(started_at, ?)"
            " WHERE task_id = ? AND " + UNFINISHED + " RETURNING *",
            (worker_id, now + lease_s, now, task_id),
        )

    def renew_lease(self, task_id: str, worker_id: str, lease_s: float) -> bool:
        """False when the task is gone, finished or held by another worker: stop working on it."""
        return (
            self._execute(
                "UPDATE tasks SET lease_until = ? WHERE task_id = ? AND worker_id = ?"
                " AND " + UNFINISHED,
                (time.time() + lease_s, task_id, worker_id),
            ).rowcount
            == 1
        )

    def set_progress(
        self, task_id: str, worker_id: str, progress: int, stage: str, generated_tokens: int
    ) -> bool:
        """Record where a running task is; False when it is not `worker_id`'s unfinished task
        any more, or already further along (progress never goes back)."""
        return (
            self._execute(
                "UPDATE tasks SET progress = ?, stage = ?, generated_tokens = ?"
                " WHERE task_id = ? AND worker_id = ? AND progress <= ? AND " + UNFINISHED,
                (progress, stage, generated_tokens, task_id, worker_id, progress),
            ).rowcount
            == 1
        )

    def record_webhook(
        self,
        task_id: str,
        state: str,
        attempts: int,
        last_status: int | None,
        last_error: str | None,
    ) -> bool:
        """Record how the task's webhook went (after each attempt); False when it is gone."""
        return (
            self._execute(
                "UPDATE tasks SET webhook_state = ?, webhook_attempts = ?,"
                " webhook_last_status = ?, webhook_last_error = ?"
                " WHERE task_id = ? AND callback_url IS NOT NULL",
                (state, attempts, last_status, last_error, task_id),
            ).rowcount
            == 1
        )

    def complete(
        self, task_id: str, worker_id: str, outcome: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Store a finished script and return the finished task; None when the task was
        deleted or taken over meanwhile."""
        return self._returning(
            "UPDATE tasks SET status = 'completed', progress = 100, result_json = ?,"
            " source = ?, fallback_reason = ?, parse_failures = ?, generation_ms = ?,"
            " fallback_template = ?, completed_at = ?, lease_until = NULL"
            " WHERE task_id = ? AND worker_id = ? AND " + UNFINISHED + " RETURNING *",
            (*_outcome_columns(outcome), time.time(), task_id, worker_id),
        )

    def fail(self, task_id: str, error: str) -> dict[str, Any] | None:
        """Mark an unfinished task failed and return it; None when it is gone or finished."""
        return self._returning(
            "UPDATE tasks SET status = 'failed', progress = 100, error = ?, completed_at = ?,"
            " lease_until = NULL WHERE task_id = ? AND " + UNFINISHED + " RETURNING *",
            (error, time.time(), task_id),
        )

    def adopt_orphans(
        self, worker_id: str, lease_s: float, max_attempts: int, limit: int = 32
    ) -> list[dict[str, Any]]:
        """Hand unfinished tasks whose lease ran out to `worker_id`; fail the ones out of tries.
        Each row is returned as stored (`unreadable` says what of it could not be decoded)."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute(
                    "SELECT task_id, attempts FROM tasks WHERE "
                    + UNFINISHED
                    + " AND lease_until < ? ORDER BY created_at LIMIT ?",
                    (now, limit),
                ).fetchall()
                adopted = []
                for row in rows:
                    if row["attempts"] >= max_attempts:
                        self._db.execute(
                            "UPDATE tasks SET status = 'failed', progress = 100, error = ?,"
                            " completed_at = ?, lease_until = NULL WHERE task_id = ?",
                            (
                                f"abandoned: the worker died on each of {row['attempts']} attempts",
                                now,
                                row["task_id"],
                            ),
                        )
                    else:
                        self._db.execute(
                            "UPDATE tasks SET worker_id = ?, lease_until = ? WHERE task_id = ?",
                            (worker_id, now + lease_s, row["task_id"]),
                        )
                        adopted.append(row["task_id"])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return [task for task in map(self.get, adopted) if task]

    def purge_finished_before(self, cutoff: float, limit: int) -> int:
        """Delete at most `limit` tasks that finished before `cutoff` (a Unix time); how many."""
        return self._execute(
            "DELETE FROM tasks WHERE task_id IN (SELECT task_id FROM tasks"
            " WHERE completed_at < ? AND " + FINISHED + " LIMIT ?)",
            (cutoff, limit),
        ).rowcount

    def source_counts(self) -> dict[str, int]:
        """How many scripts each path wrote, and how many LLM replies failed to parse (lifetime
        totals of this file, kept by triggers: no scan of the tasks)."""
        counts = dict.fromkeys((*SCRIPT_SOURCES, "parse_failures"), 0)
        for name, value in self._execute("SELECT name, value FROM script_counts").fetchall():
            counts[name] = value
        return counts


def owned_by(owner: str | None) -> tuple[str, tuple]:
    """The SQL condition (and its parameter) for tasks `owner` may see; None = every task."""
    return ("", ()) if owner is None else (" AND owner = ?", (owner,))


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def _webhook_columns(callback_url: str | None) -> tuple:
    """callback_url, webhook_state of a new task."""
    return (callback_url, "pending" if callback_url else None)


def _outcome_columns(outcome: dict[str, Any]) -> tuple:
    """result_json, source, fallback_reason, parse_failures, generation_ms, fallback_template
    of a written script."""
    return (
        _json(outcome["script"]),
        outcome["source"],
        outcome.get("fallback_reason"),
        outcome.get("parse_failures", 0),
        outcome.get("generation_ms"),
        outcome.get("fallback_template"),
    )


def row_to_task(row: sqlite3.Row) -> dict[str, Any]:
    """A row as a dict with its JSON decoded. A column that no longer decodes becomes None and
    is named in `unreadable`, so one damaged row never fails a list or a sweep."""
    task = dict(row)
    problems: list[str] = []
    task["request"] = _decoded(task.pop("request_json"), "request", problems)
    task["result"] = _decoded(task.pop("result_json"), "result", problems)
    task["notes"] = _decoded(task.pop("notes_json"), "notes", problems) or []
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


# The one writer of the SQLite file: a single replica by design (see README, "Task store").
TaskStoreDeployment = serve.deployment(
    name="TaskStore",
    num_replicas=1,
    max_ongoing_requests=256,
    ray_actor_options={"num_cpus": 0.1, "runtime_env": SYNC_METHODS_ON_THE_EVENT_LOOP},
)(TaskStore)
