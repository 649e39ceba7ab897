"""Tasks in SQLite, behind one single-replica deployment that every ingress replica shares.

Each unfinished task carries a lease: the ingress replica working on it renews it, and when a
worker dies its lease runs out and another replica adopts the task (or fails it after
`max_attempts`), so no task stays `running` forever and nothing accepted is lost.
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

UNFINISHED = "status IN ('pending', 'running')"  # SQL: a task nobody has finished yet

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
    notes_json TEXT
);
CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (status, created_at);
CREATE INDEX IF NOT EXISTS tasks_by_created ON tasks (created_at);
"""
# Columns added after the first release: a file written before them gets them on open.
ADDED_COLUMNS = {"fallback_template": "TEXT", "notes_json": "TEXT"}


class TaskStore:
    """Task rows in one SQLite file (WAL mode); thread-safe; returns plain dicts."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        present = {row["name"] for row in self._db.execute("PRAGMA table_info(tasks)")}
        for column, kind in ADDED_COLUMNS.items():
            if column not in present:
                self._db.execute(f"ALTER TABLE tasks ADD COLUMN {column} {kind}")

    def _execute(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, params)

    def _returning(self, sql: str, params: tuple) -> dict[str, Any] | None:
        """The row a `... RETURNING *` statement wrote, or None when it wrote none."""
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()  # all: ends the statement
        return row_to_task(rows[0]) if rows else None

    def _one(self, task_id: str) -> dict[str, Any] | None:
        row = self._execute("SELECT * FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        return row_to_task(row) if row else None

    def create_running(
        self,
        task_id: str,
        request: dict[str, Any],
        worker_id: str,
        lease_s: float,
        notes: list[str] | tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """A new task, already running under `worker_id`'s lease (the accepting replica runs it
        at once: one call instead of create + start)."""
        now = time.time()
        return self._returning(
            "INSERT INTO tasks (task_id, status, progress, request_json, attempts, worker_id,"
            " lease_until, created_at, started_at, notes_json)"
            " VALUES (?, 'running', 10, ?, 1, ?, ?, ?, ?, ?) RETURNING *",
            (task_id, _json(request), worker_id, now + lease_s, now, now, _json(list(notes))),
        )

    def create_completed(
        self,
        request: dict[str, Any],
        worker_id: str,
        outcome: dict[str, Any],
        notes: list[str] | tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """A new task that is already finished (a script the ingress had at hand), in one call."""
        now = time.time()
        return self._returning(
            "INSERT INTO tasks (task_id, status, progress, request_json, result_json, source,"
            " fallback_reason, parse_failures, generation_ms, fallback_template, attempts,"
            " worker_id, created_at, started_at, completed_at, notes_json)"
            " VALUES (?, 'completed', 100, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?) RETURNING *",
            (
                uuid.uuid4().hex,
                _json(request),
                *_outcome_columns(outcome),
                worker_id,
                now,
                now,
                now,
                _json(list(notes)),
            ),
        )

    def get(self, task_id: str) -> dict[str, Any] | None:
        return self._one(task_id)

    def list_tasks(
        self, status: str | None, skip: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())
        total = self._execute(f"SELECT COUNT(*) FROM tasks {where}", params).fetchone()[0]
        rows = self._execute(
            f"SELECT * FROM tasks {where} ORDER BY created_at DESC LIMIT ? OFFSET ?",
            (*params, limit, skip),
        ).fetchall()
        return [row_to_task(row) for row in rows], total

    def delete(self, task_id: str) -> bool:
        return self._execute("DELETE FROM tasks WHERE task_id = ?", (task_id,)).rowcount == 1

    def start(self, task_id: str, worker_id: str, lease_s: float) -> dict[str, Any] | None:
        """Mark an adopted task running under `worker_id`; None when it is gone or finished."""
        now = time.time()
        return self._returning(
            "UPDATE tasks SET status = 'running', progress = 10, attempts = attempts + 1,"
            " worker_id = ?, lease_until = ?, started_at = COALESCE(started_at, ?)"
            " WHERE task_id = ? AND " + UNFINISHED + " RETURNING *",
            (worker_id, now + lease_s, now, task_id),
        )

    def renew_lease(self, task_id: str, worker_id: str, lease_s: float) -> bool:
        return (
            self._execute(
                "UPDATE tasks SET lease_until = ? WHERE task_id = ? AND worker_id = ?"
                " AND " + UNFINISHED,
                (time.time() + lease_s, task_id, worker_id),
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
        """Hand unfinished tasks whose lease ran out to `worker_id`; fail the ones out of tries."""
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
        return [task for task in map(self._one, adopted) if task]

    def source_counts(self) -> dict[str, int]:
        """How many stored scripts each path produced, and how many LLM replies failed to parse."""
        counts = dict.fromkeys((*SCRIPT_SOURCES, "parse_failures"), 0)
        rows = self._execute(
            "SELECT source, COUNT(*), SUM(parse_failures) FROM tasks"
            " WHERE source IS NOT NULL GROUP BY source"
        ).fetchall()
        for source, count, parse_failures in rows:
            counts[source] = count
            counts["parse_failures"] += parse_failures or 0
        return counts


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


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
    task = dict(row)
    task["request"] = json.loads(task.pop("request_json"))
    result = task.pop("result_json")
    task["result"] = json.loads(result) if result else None
    notes = task.pop("notes_json")
    task["notes"] = json.loads(notes) if notes else []
    return task


# The one writer of the SQLite file: a single replica by design (see README, "Task store").
TaskStoreDeployment = serve.deployment(
    name="TaskStore",
    num_replicas=1,
    max_ongoing_requests=256,
    ray_actor_options={"num_cpus": 0.1, "runtime_env": SYNC_METHODS_ON_THE_EVENT_LOOP},
)(TaskStore)
