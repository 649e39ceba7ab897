"""Schema versions of the task store (Alembic, serve_app/store/migrations): a file written by
the SQLite-only TaskStore upgrades in place keeping every task; a newer schema is refused."""

import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from serve_app.store import SchemaTooNew, TaskStore, head_revision

# Written by the TaskStore of commit 938fa3d (before Alembic), see its commit message.
BEFORE_ALEMBIC = Path(__file__).parent / "data" / "tasks_before_alembic.db"
# The tasks table as the first release wrote it (no owner, keys, notes, revisions, counters).
FIRST_RELEASE = """
CREATE TABLE tasks (
    task_id TEXT PRIMARY KEY, status TEXT NOT NULL, progress INTEGER NOT NULL DEFAULT 0,
    request_json TEXT NOT NULL, result_json TEXT, source TEXT, fallback_reason TEXT,
    parse_failures INTEGER NOT NULL DEFAULT 0, error TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    worker_id TEXT, lease_until REAL, created_at REAL NOT NULL, started_at REAL,
    completed_at REAL, generation_ms REAL
);
CREATE INDEX tasks_by_status ON tasks (status, created_at);
"""


def rows(path: Path) -> dict[str, dict]:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return {row["task_id"]: dict(row) for row in db.execute("SELECT * FROM tasks")}


def test_a_file_written_before_alembic_upgrades_in_place_and_keeps_every_task(tmp_path):
    path = tmp_path / "tasks.db"
    shutil.copy(BEFORE_ALEMBIC, path)
    before = rows(path)
    store = TaskStore(path)
    assert store.schema_revision == head_revision()
    after = rows(path)
    assert after.keys() == before.keys() and len(after) == 5
    for task_id, row in before.items():  # every stored column kept as it was
        assert {column: after[task_id][column] for column in row} == row
    edited = store.get("a" * 32, "alice")
    assert edited["revision"] == 3 and edited["result"]["title"] == "forest v3"
    assert store.get("a" * 32, revision=1)["result"]["title"] == "forest"
    assert [r["source"] for r in store.list_revisions("a" * 32)] == ["llm", "edit", "llm"]
    assert store.source_counts() == {
        "llm": 1,
        "llm_repaired": 1,
        "fallback": 1,
        "parse_failures": 3,
    }
    # Its Idempotency-Keys still hold, and its orphan is adopted.
    again = store.create_running(
        "f" * 32, {"prompt": "x"}, "w", 30, owner="alice", idempotency=("key-1", "digest-1")
    )
    assert again["replayed"] and again["task_id"] == "a" * 32
    assert [t["task_id"] for t in store.adopt_orphans("w9", 30, 3)] == ["c" * 32]
    # Counted once: reopening neither migrates again nor counts again.
    done = store.complete("c" * 32, "w9", {"script": {"title": "x"}, "source": "llm"})
    assert done["status"] == "completed"
    store.close()
    reopened = TaskStore(path)
    assert reopened.source_counts()["llm"] == 2 and len(rows(path)) == 5


def test_a_file_from_the_first_release_gets_every_later_column(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(FIRST_RELEASE)
        db.execute(
            "INSERT INTO tasks (task_id, status, request_json, created_at) VALUES (?, ?, ?, ?)",
            ("old", "pending", '{"prompt": "x"}', time.time()),
        )
        db.execute(
            "INSERT INTO tasks (task_id, status, request_json, result_json, source,"
            " parse_failures, created_at, completed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ("old-done", "completed", '{"prompt": "x"}', '{"title": "old"}', "fallback", 2, 1, 2),
        )
    store = TaskStore(path)
    old = store.get("old")
    assert old["request"] == {"prompt": "x"} and old["notes"] == [] and old["owner"] is None
    assert store.get("old-done")["revision"] == 1
    assert store.add_revision("old-done", None, {"title": "new"}, "edit", "n", 1)[0] == "added"
    assert store.get("old-done", revision=1)["result"] == {"title": "old"}
    expected = {"llm": 0, "llm_repaired": 0, "fallback": 1, "parse_failures": 2}
    assert store.source_counts() == expected
    assert TaskStore(path).source_counts() == expected


def test_a_schema_newer_than_the_code_is_refused_with_a_clear_message(store_database):
    store = store_database.open()
    task = store.create_completed({"prompt": "x"}, "w", {"script": {}, "source": "llm"})
    store_database.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    with pytest.raises(SchemaTooNew) as refused:
        store_database.open()
    message = str(refused.value)
    assert "'9999_from_the_future'" in message and "newer than this version" in message
    assert head_revision() in message and "task_store_url" in message
    assert "password" not in message.lower() and (store_database.password or "\0") not in message
    store_database.execute(f"UPDATE alembic_version SET version_num = '{head_revision()}'")
    assert store_database.open().get(task["task_id"]) == task  # nothing was touched


def test_replicas_opening_a_new_database_at_once_migrate_it_once(store_database):
    """Four store objects opened together on an empty database (ingress replicas starting):
    one migrates under the lock, the others find it done."""
    opened: list = []
    errors: list = []
    start = threading.Barrier(4)

    def open_store() -> None:
        start.wait(timeout=30)
        try:
            opened.append(store_database.open())
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(opened) == 4
    assert store_database.execute("SELECT version_num FROM alembic_version") == [(head_revision(),)]
    task = opened[0].create_completed({"prompt": "x"}, "w", {"script": {}, "source": "llm"})
    assert opened[3].get(task["task_id"]) == task
    assert opened[1].source_counts()["llm"] == 1


def test_a_file_whose_store_added_the_event_columns_on_open_keeps_them(tmp_path):
    """Before Alembic, the TaskStore added issue 12's columns on open: migration 0002 adds only
    the ones such a file lacks, keeping the values of those it has."""
    path = tmp_path / "tasks.db"
    shutil.copy(BEFORE_ALEMBIC, path)
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE tasks ADD COLUMN stage TEXT")
        db.execute("ALTER TABLE tasks ADD COLUMN callback_url TEXT")
        db.execute("UPDATE tasks SET stage = 'generating', callback_url = 'https://x.example/h'")
    store = TaskStore(path)
    task = store.get("c" * 32)
    assert task["stage"] == "generating" and task["callback_url"] == "https://x.example/h"
    assert task["generated_tokens"] == 0 and task["webhook_attempts"] == 0
    assert store.set_progress("c" * 32, "w2", 50, "generating", 7)
    assert store.record_webhook("c" * 32, "delivered", 1, 200, None)
    task = store.get("c" * 32)
    assert (task["progress"], task["generated_tokens"], task["webhook_state"]) == (
        50,
        7,
        "delivered",
    )
