"""Revisions in the task store (serve_app/store/revisions.py), on a real SQLite file and a real
PostgreSQL database (tests/conftest.py, `store_database`)."""

import threading
import time
import uuid

import pytest
from sqlalchemy.exc import OperationalError

REQUEST = {"prompt": "制作一段关于森林探险的短视频", "language": "auto"}


def script(title: str) -> dict:
    return {"title": title, "language": "zh", "total_duration": 5.0, "scenes": []}


@pytest.fixture
def store(store_database):
    return store_database.open()


def completed(store, owner=None, source="llm") -> dict:
    outcome = {"script": script("as written"), "source": source}
    return store.create_completed(REQUEST, "w", outcome, owner=owner)


def revision_rows(store) -> int:
    with store.engine.connect() as connection:
        return connection.exec_driver_sql("SELECT COUNT(*) FROM revisions").scalar_one()


def test_a_task_never_edited_is_revision_one_and_has_no_other(store):
    task = completed(store, source="fallback")
    task_id = task["task_id"]
    assert task["revision"] == 1 and task["revision_source"] == "fallback"
    assert store.get(task_id, revision=1) == task
    missing = store.get(task_id, revision=2)
    assert missing["unknown_revision"] == 2 and missing["result"] is None
    [listed] = store.list_revisions(task_id)
    assert listed["revision"] == 1 and listed["source"] == "fallback"
    assert listed["created_at"] == task["completed_at"]
    assert revision_rows(store) == 0  # nothing written until the first edit
    running = store.create_running(uuid.uuid4().hex, REQUEST, "w", 30)
    assert running["revision"] is None and store.list_revisions(running["task_id"]) == []


def test_each_edit_is_a_new_revision_and_every_earlier_one_stays_readable(store):
    task_id = completed(store)["task_id"]
    outcome, edited = store.add_revision(task_id, None, script("two"), "edit", "scene 1", 1)
    assert outcome == "added"
    assert edited["revision"] == 2 and edited["result"]["title"] == "two"
    assert edited["revision_source"] == "edit" and edited["revision_note"] == "scene 1"
    assert edited["source"] == "llm"  # the path that wrote the task stays as it was
    outcome, again = store.add_revision(task_id, None, script("three"), "fallback", "scene 2", 2)
    assert outcome == "added" and again["revision"] == 3
    assert store.get(task_id) == again
    first = store.get(task_id, revision=1)
    assert first["result"]["title"] == "as written" and first["revision_source"] == "llm"
    assert first["revision"] == 1 and first["revision_note"] == "as written"
    assert store.get(task_id, revision=2)["result"]["title"] == "two"
    listed = store.list_revisions(task_id)
    assert [(r["revision"], r["source"], r["note"]) for r in listed] == [
        (1, "llm", "as written"),
        (2, "edit", "scene 1"),
        (3, "fallback", "scene 2"),
    ]
    assert listed[0]["created_at"] <= listed[1]["created_at"] <= listed[2]["created_at"]


def test_an_edit_from_a_stale_revision_is_refused_and_writes_nothing(store):
    task_id = completed(store)["task_id"]
    store.add_revision(task_id, None, script("two"), "edit", "first", 1)
    outcome, current = store.add_revision(task_id, None, script("lost?"), "edit", "second", 1)
    assert outcome == "conflict" and current["revision"] == 2
    assert current["result"]["title"] == "two"
    assert len(store.list_revisions(task_id)) == 2


def test_only_a_completed_task_of_the_owner_can_be_edited(store):
    mine = completed(store, owner="alice")["task_id"]
    assert store.add_revision(mine, "bob", script("x"), "edit", "n", 1) == ("missing", None)
    assert store.list_revisions(mine, "bob") is None
    assert store.get(mine, "bob", revision=1) is None
    assert store.add_revision("nope", None, script("x"), "edit", "n", 1) == ("missing", None)
    running = store.create_running(uuid.uuid4().hex, REQUEST, "w", 30, owner="alice")
    outcome, task = store.add_revision(running["task_id"], "alice", script("x"), "edit", "n", 1)
    assert outcome == "not_completed" and task["status"] == "running"
    assert store.add_revision(mine, "alice", script("x"), "edit", "n", 1)[0] == "added"
    assert store.add_revision(mine, None, script("y"), "edit", "admin", 2)[0] == "added"
    assert revision_rows(store) == 3


def test_delete_and_retention_remove_the_revisions_too(store, store_database):
    deleted = completed(store)["task_id"]
    expired = completed(store)["task_id"]
    kept = completed(store)["task_id"]
    for task_id in (deleted, expired, kept):
        store.add_revision(task_id, None, script("two"), "edit", "n", 1)
    assert revision_rows(store) == 6
    assert store.delete(deleted)
    store_database.execute(
        "UPDATE tasks SET completed_at = completed_at - 100 WHERE task_id = :id", id=expired
    )
    assert store.purge_finished_before(time.time() - 50, limit=10) == 1
    remaining = store_database.execute("SELECT DISTINCT task_id FROM revisions")
    assert [row[0] for row in remaining] == [kept]


def test_concurrent_edits_take_distinct_numbers_and_none_is_lost(store_database):
    """Two store objects (two connections or pools) and 12 threads, each editing from the
    revision it read and reading again on a conflict: every edit lands, numbered 2..13 once
    each."""
    stores = [store_database.open(), store_database.open()]
    task_id = completed(stores[0])["task_id"]
    start = threading.Barrier(12)
    landed: list[int] = []

    def edit(index: int) -> None:
        store = stores[index % 2]
        start.wait(timeout=30)
        for _ in range(200):  # bounded: 12 writers need far fewer tries
            base = store.get(task_id)["revision"]
            try:
                outcome, task = store.add_revision(
                    task_id, None, script(f"edit {index}"), "edit", f"by {index}", base
                )
            except OperationalError as error:
                # Two connections: the other one held the write lock past the busy timeout
                # (a loaded CI box). The service answers this 503 + Retry-After; the edit is
                # made again, as a client does, and must then land once.
                assert "locked" in str(error)
                continue
            if outcome == "added":
                landed.append(task["revision"])
                return

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(landed) == list(range(2, 14))
    listed = stores[1].list_revisions(task_id)
    assert [r["revision"] for r in listed] == list(range(1, 14))
    assert {r["note"] for r in listed[1:]} == {f"by {i}" for i in range(12)}
