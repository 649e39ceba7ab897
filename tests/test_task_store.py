import time

import pytest

from serve_app.task_store import TaskStore

REQUEST = {"prompt": "制作一段关于森林探险的短视频", "language": "auto"}
SCRIPT = {"title": "t", "language": "zh", "total_duration": 5.0, "scenes": []}


@pytest.fixture
def store(tmp_path):
    return TaskStore(tmp_path / "tasks.db")


def finished(source="llm", **extra):
    return {"script": SCRIPT, "source": source, "generation_ms": 12.5, **extra}


def test_task_lifecycle(store):
    task = store.create(REQUEST, "w1", lease_s=30)
    assert task["status"] == "pending" and task["request"] == REQUEST and task["attempts"] == 0
    running = store.start(task["task_id"], "w1", lease_s=30)
    assert running["status"] == "running" and running["attempts"] == 1
    done = store.complete(task["task_id"], "w1", finished())
    assert done == store.get(task["task_id"])
    assert done["status"] == "completed" and done["progress"] == 100
    assert done["result"] == SCRIPT and done["source"] == "llm"
    assert done["completed_at"] >= done["started_at"] >= done["created_at"]


def test_finished_tasks_survive_reopening_the_file(tmp_path):
    path = tmp_path / "tasks.db"
    first = TaskStore(path)
    task = first.create(REQUEST, "w1", 30)
    first.start(task["task_id"], "w1", 30)
    first.complete(task["task_id"], "w1", finished())
    reopened = TaskStore(path)
    assert reopened.get(task["task_id"])["result"] == SCRIPT
    assert reopened._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_list_filters_and_pages_newest_first(store):
    ids = [store.create({**REQUEST, "prompt": f"p{i}"}, "w", 30)["task_id"] for i in range(5)]
    store.start(ids[0], "w", 30)
    store.complete(ids[0], "w", finished())
    items, total = store.list_tasks(None, skip=0, limit=2)
    assert total == 5 and [t["task_id"] for t in items] == ids[::-1][:2]
    completed, total_completed = store.list_tasks("completed", 0, 10)
    assert total_completed == 1 and completed[0]["task_id"] == ids[0]
    pending, _ = store.list_tasks("pending", 3, 10)
    assert [t["task_id"] for t in pending] == [ids[1]]


def test_delete_and_late_completion_of_a_deleted_task(store):
    task = store.create(REQUEST, "w", 30)
    store.start(task["task_id"], "w", 30)
    assert store.delete(task["task_id"])
    assert not store.delete(task["task_id"])
    assert not store.complete(task["task_id"], "w", finished())
    assert store.get(task["task_id"]) is None


def test_a_worker_that_lost_its_task_cannot_overwrite_the_new_owner(store):
    task = store.create(REQUEST, "old", lease_s=0.01)
    store.start(task["task_id"], "old", lease_s=0.01)
    time.sleep(0.05)
    adopted = store.adopt_orphans("new", lease_s=30, max_attempts=3)
    assert [t["task_id"] for t in adopted] == [task["task_id"]]
    assert not store.complete(task["task_id"], "old", finished())
    assert store.start(task["task_id"], "new", 30)["attempts"] == 2
    assert store.complete(task["task_id"], "new", finished())


def test_orphans_with_live_leases_are_left_alone(store):
    store.create(REQUEST, "alive", lease_s=60)
    assert store.adopt_orphans("other", lease_s=30, max_attempts=3) == []


def test_a_task_whose_worker_keeps_dying_is_failed_with_the_reason(store):
    task = store.create(REQUEST, "w", lease_s=0.01)
    for attempt in range(3):
        store.start(task["task_id"], f"w{attempt}", lease_s=0.01)
        time.sleep(0.03)
        store.adopt_orphans(f"w{attempt + 1}", lease_s=0.01, max_attempts=3)
    failed = store.get(task["task_id"])
    assert failed["status"] == "failed"
    assert "died" in failed["error"] and "3 attempts" in failed["error"]


def test_source_counts_aggregate_paths_and_parse_failures(store):
    for source, parse_failures in [("llm", 0), ("llm_repaired", 1), ("fallback", 2)]:
        task = store.create(REQUEST, "w", 30)
        store.start(task["task_id"], "w", 30)
        store.complete(task["task_id"], "w", finished(source, parse_failures=parse_failures))
    assert store.source_counts() == {
        "llm": 1,
        "llm_repaired": 1,
        "fallback": 1,
        "parse_failures": 3,
    }
