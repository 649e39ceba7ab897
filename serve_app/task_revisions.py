"""Revisions of a finished storyboard: every script a task has had, numbered 1 (as written), 2, ...

`tasks.result_json` always holds the latest script and `tasks.revision` its number (NULL in a
file written before revisions: revision 1), so reading a task never joins. The `revisions`
table keeps every script by number; revision 1's row is copied from the task by the first
edit, so writing a task costs nothing more than before. A trigger deletes a task's revisions
with the task (DELETE, retention). A new revision's number is taken inside one `BEGIN
IMMEDIATE` transaction that also checks the revision the edit started from, so two concurrent
edits never share a number and neither is silently lost.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

REVISIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS revisions (
    task_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    script_json TEXT NOT NULL,
    source TEXT NOT NULL,
    note TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (task_id, revision)
);
CREATE TRIGGER IF NOT EXISTS revisions_go_with_their_task AFTER DELETE ON tasks BEGIN
    DELETE FROM revisions WHERE task_id = OLD.task_id;
END;
"""
# Columns of `tasks` that describe its latest revision (added on open, as ADDED_COLUMNS).
REVISION_COLUMNS = {"revision": "INTEGER", "revision_source": "TEXT", "revision_note": "TEXT"}
FIRST_REVISION_NOTE = "as written"
# The first edit keeps the script as written as revision 1.
COPY_FIRST_REVISION = (
    "INSERT OR IGNORE INTO revisions (task_id, revision, script_json, source, note, created_at)"
    " SELECT task_id, 1, result_json, COALESCE(source, 'fallback'), ?,"
    " COALESCE(completed_at, created_at) FROM tasks WHERE task_id = ? AND result_json IS NOT NULL"
)
EditOutcome = Literal["added", "missing", "not_completed", "conflict"]


class TaskRevisions:
    """The revision methods of TaskStore (serve_app/task_store.py), which provides `_db`,
    `_lock`, `get` and `_row_to_task`."""

    _db: sqlite3.Connection
    _lock: threading.Lock
    _row_to_task: Callable[[sqlite3.Row], dict[str, Any]]
    get: Callable[..., dict[str, Any] | None]

    def get_revision(self, task: dict[str, Any], revision: int | None) -> dict[str, Any]:
        """`task` showing revision `revision` (None: the latest, as it is); an unknown number
        gives the task with `result` None and `unknown_revision` set to it."""
        if revision is None or revision == task["revision"]:
            return task
        row = self._locked(
            "SELECT * FROM revisions WHERE task_id = ? AND revision = ?",
            (task["task_id"], revision),
        ).fetchone()
        if row is None:
            return {**task, "result": None, "revision": revision, "unknown_revision": revision}
        return {
            **task,
            "result": json.loads(row["script_json"]),
            "revision": revision,
            "revision_source": row["source"],
            "revision_note": row["note"],
        }

    def list_revisions(self, task_id: str, owner: str | None = None) -> list[dict[str, Any]] | None:
        """Every revision of the task (revision, source, note, created_at), oldest first; None
        when `owner` may not see the task."""
        task = self.get(task_id, owner)
        if task is None:
            return None
        rows = self._locked(
            "SELECT revision, source, note, created_at FROM revisions WHERE task_id = ?"
            " ORDER BY revision",
            (task_id,),
        ).fetchall()
        listed = [dict(row) for row in rows]
        if not listed and task["result"] is not None:  # never edited: revision 1 is the task
            listed = [
                {
                    "revision": 1,
                    "source": task["source"],
                    "note": FIRST_REVISION_NOTE,
                    "created_at": task["completed_at"] or task["created_at"],
                }
            ]
        return listed

    def add_revision(
        self,
        task_id: str,
        owner: str | None,
        script: dict[str, Any],
        source: str,
        note: str,
        base_revision: int,
    ) -> tuple[EditOutcome, dict[str, Any] | None]:
        """Store `script` as the task's next revision, if the task (seen by `owner`) is
        completed and still at `base_revision`, the one the edit started from:
        ("added", the task now), ("conflict", the task as it is) when another edit came first,
        ("not_completed", the task) or ("missing", None)."""
        condition, params = ("", ()) if owner is None else (" AND owner = ?", (owner,))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                outcome = self._add_revision_in_transaction(
                    task_id, condition, params, script, source, note, base_revision
                )
                row = self._db.execute("SELECT * FROM tasks WHERE task_id = ?", (task_id,))
                row = row.fetchone()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if outcome == "missing":
            return outcome, None
        return outcome, self._row_to_task(row)

    def _add_revision_in_transaction(
        self,
        task_id: str,
        condition: str,
        params: tuple,
        script: dict[str, Any],
        source: str,
        note: str,
        base_revision: int,
    ) -> EditOutcome:
        row = self._db.execute(
            "SELECT status, COALESCE(revision, 1) AS revision FROM tasks WHERE task_id = ?"
            + condition,
            (task_id, *params),
        ).fetchone()
        if row is None:
            return "missing"
        if row["status"] != "completed":
            return "not_completed"
        if row["revision"] != base_revision:
            return "conflict"
        self._db.execute(COPY_FIRST_REVISION, (FIRST_REVISION_NOTE, task_id))
        number = base_revision + 1
        script_json = json.dumps(script, ensure_ascii=False)
        self._db.execute(
            "INSERT INTO revisions (task_id, revision, script_json, source, note, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (task_id, number, script_json, source, note, time.time()),
        )
        self._db.execute(
            "UPDATE tasks SET result_json = ?, revision = ?, revision_source = ?,"
            " revision_note = ? WHERE task_id = ?",
            (script_json, number, source, note, task_id),
        )
        return "added"

    def _locked(self, sql: str, params: tuple) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, params)
