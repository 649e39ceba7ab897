"""Revisions of a finished storyboard: every script a task has had, numbered 1 (as written), 2, ...

`tasks.result_json` always holds the latest script and `tasks.revision` its number (NULL in a
row written before revisions: revision 1), so reading a task never joins. The `revisions` table
keeps every script by number; revision 1's row is copied from the task by the first edit, so
writing a task costs nothing more than before. Revisions are deleted with their task (a trigger
on SQLite, the foreign key on PostgreSQL). A new revision's number is taken in one transaction
that locks the task's row (SQLite: the write lock; PostgreSQL: `FOR UPDATE`) and checks the
revision the edit started from, so two concurrent edits never share a number and neither is
silently lost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Literal

import sqlalchemy as sa

from serve_app.store.schema import revisions, tasks

FIRST_REVISION_NOTE = "as written"
EditOutcome = Literal["added", "missing", "not_completed", "conflict"]


class TaskRevisions:
    """The revision methods of TaskStore (serve_app/store/tasks.py), which provides `_read`,
    `_write` and `get`."""

    _read: Callable[[], Any]
    _write: Callable[[], Any]
    _insert: Callable[..., Any]
    get: Callable[..., dict[str, Any] | None]

    def get_revision(
        self, task: dict[str, Any], revision: int | None, connection: sa.Connection
    ) -> dict[str, Any]:
        """`task` showing revision `revision` (None: the latest, as it is); an unknown number
        gives the task with `result` None and `unknown_revision` set to it."""
        if revision is None or revision == task["revision"]:
            return task
        row = connection.execute(
            sa.select(revisions).where(
                revisions.c.task_id == task["task_id"], revisions.c.revision == revision
            )
        ).first()
        if row is None:
            return {**task, "result": None, "revision": revision, "unknown_revision": revision}
        return {
            **task,
            "result": json.loads(row.script_json),
            "revision": revision,
            "revision_source": row.source,
            "revision_note": row.note,
        }

    def list_revisions(self, task_id: str, owner: str | None = None) -> list[dict[str, Any]] | None:
        """Every revision of the task (revision, source, note, created_at), oldest first; None
        when `owner` may not see the task."""
        task = self.get(task_id, owner)
        if task is None:
            return None
        with self._read() as connection:
            rows = connection.execute(
                sa.select(
                    revisions.c.revision,
                    revisions.c.source,
                    revisions.c.note,
                    revisions.c.created_at,
                )
                .where(revisions.c.task_id == task_id)
                .order_by(revisions.c.revision)
            ).all()
        listed = [dict(row._mapping) for row in rows]
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
        with self._write() as connection:
            return self._add_revision_in(
                connection, task_id, owner, script, source, note, base_revision
            )

    def _add_revision_in(
        self,
        connection: sa.Connection,
        task_id: str,
        owner: str | None,
        script: dict[str, Any],
        source: str,
        note: str,
        base_revision: int,
    ) -> tuple[EditOutcome, dict[str, Any] | None]:
        """`add_revision` inside the caller's write transaction."""
        from serve_app.store.tasks import owned_by, row_to_task

        row = connection.execute(
            sa.select(tasks).where(tasks.c.task_id == task_id, *owned_by(owner)).with_for_update()
        ).first()
        if row is None:
            return "missing", None
        if row.status != "completed":
            return "not_completed", row_to_task(row)
        if (row.revision or 1) != base_revision:
            return "conflict", row_to_task(row)
        now = time.time()
        first = self._insert(revisions).values(
            task_id=task_id,
            revision=1,
            script_json=row.result_json,
            source=row.source or "fallback",
            note=FIRST_REVISION_NOTE,
            created_at=row.completed_at or row.created_at,
        )
        if row.result_json is not None:
            connection.execute(first.on_conflict_do_nothing())
        script_json = json.dumps(script, ensure_ascii=False)
        number = base_revision + 1
        connection.execute(
            sa.insert(revisions).values(
                task_id=task_id,
                revision=number,
                script_json=script_json,
                source=source,
                note=note,
                created_at=now,
            )
        )
        edited = connection.execute(
            sa.update(tasks)
            .where(tasks.c.task_id == task_id)
            .values(
                result_json=script_json,
                revision=number,
                revision_source=source,
                revision_note=note,
            )
            .returning(tasks)
        ).one()
        return "added", row_to_task(edited)
