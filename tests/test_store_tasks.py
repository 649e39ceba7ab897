"""The task store (serve_app/store) on both backends: every test runs on a SQLite file and on
a fresh database of the session's PostgreSQL server (tests/conftest.py, `store_database`)."""

import threading
import time
import uuid

import pytest

REQUEST = {"prompt": "制作一段关于森林探险的短视频", "language": "auto"}
SCRIPT = {"title": "t", "language": "zh", "total_duration": 5.0, "scenes": []}


@pytest.fixture
def store(store_database):
    return store_database.open()


def new_id() -> str:
    return uuid.uuid4().hex


def finished(source="llm", **extra):
    return {"script": SCRIPT, "source": source, "generation_ms": 12.5, **extra}


def run_to_completion(store, request=REQUEST, **outcome) -> dict:
    task = store.create_running(new_id(), request, "w", 30)
    return store.complete(task["task_id"], "w", finished(**outcome))


def test_task_lifecycle(store):
    task_id = new_id()
    task = store.create_running(task_id, REQUEST, "w1", lease_s=30)
    assert task == store.get(task_id) and task["task_id"] == task_id
    assert task["status"] == "running" and task["request"] == REQUEST
    assert task["attempts"] == 1 and task["worker_id"] == "w1" and task["progress"] == 10
    assert task["started_at"] == task["created_at"] and task["lease_until"] > time.time() + 25
    done = store.complete(task["task_id"], "w1", finished())
    assert done == store.get(task["task_id"])
    assert done["status"] == "completed" and done["progress"] == 100
    assert done["result"] == SCRIPT and done["source"] == "llm" and done["lease_until"] is None
    assert done["completed_at"] >= done["started_at"] >= done["created_at"]


def test_a_task_stored_already_completed_is_final(store):
    outcome = finished("fallback", fallback_reason="model_unavailable: gone", generation_ms=0.0)
    task = store.create_completed(REQUEST, "w1", outcome)
    assert task == store.get(task["task_id"])
    assert task["status"] == "completed" and task["progress"] == 100 and task["attempts"] == 1
    assert task["result"] == SCRIPT and task["request"] == REQUEST
    assert task["source"] == "fallback" and task["fallback_reason"] == "model_unavailable: gone"
    assert task["lease_until"] is None
    assert task["created_at"] == task["started_at"] == task["completed_at"]
    # Nobody can run, fail or adopt it again.
    assert store.complete(task["task_id"], "w1", finished()) is None
    assert store.fail(task["task_id"], "late") is None
    assert store.start(task["task_id"], "w2", 30) is None
    assert store.adopt_orphans("w2", lease_s=30, max_attempts=3) == []
    assert store.get(task["task_id"]) == task


def test_finished_tasks_survive_reopening_the_database(store_database):
    first = store_database.open()
    ran = run_to_completion(first)
    at_hand = first.create_completed(REQUEST, "w1", finished("fallback"))
    first.close()
    reopened = store_database.open()
    assert reopened.get(ran["task_id"]) == ran
    assert reopened.get(at_hand["task_id"]) == at_hand


def test_list_filters_and_pages_newest_first(store):
    ids = [
        store.create_running(new_id(), {**REQUEST, "prompt": f"p{i}"}, "w", 30)["task_id"]
        for i in range(5)
    ]
    store.complete(ids[0], "w", finished())
    items, total = store.list_tasks(None, skip=0, limit=2)
    assert total == 5 and [t["task_id"] for t in items] == ids[::-1][:2]
    completed, total_completed = store.list_tasks("completed", 0, 10)
    assert total_completed == 1 and completed[0]["task_id"] == ids[0]
    running, _ = store.list_tasks("running", 3, 10)
    assert [t["task_id"] for t in running] == [ids[1]]


def test_delete_and_late_completion_of_a_deleted_task(store):
    task = store.create_running(new_id(), REQUEST, "w", 30)
    assert store.delete(task["task_id"])
    assert not store.delete(task["task_id"])
    assert store.complete(task["task_id"], "w", finished()) is None
    assert store.fail(task["task_id"], "late") is None
    assert store.get(task["task_id"]) is None


def test_a_worker_that_lost_its_task_cannot_overwrite_the_new_owner(store):
    task = store.create_running(new_id(), REQUEST, "old", lease_s=0.01)
    time.sleep(0.05)
    adopted = store.adopt_orphans("new", lease_s=30, max_attempts=3)
    assert [t["task_id"] for t in adopted] == [task["task_id"]]
    assert store.complete(task["task_id"], "old", finished()) is None
    assert store.renew_lease(task["task_id"], "old", 30) is False
    resumed = store.start(task["task_id"], "new", 30)
    assert resumed["attempts"] == 2 and resumed["started_at"] == task["started_at"]
    assert store.complete(task["task_id"], "new", finished())["status"] == "completed"


def test_orphans_with_live_leases_are_left_alone(store):
    task = store.create_running(new_id(), REQUEST, "alive", lease_s=60)
    assert store.adopt_orphans("other", lease_s=30, max_attempts=3) == []
    assert store.renew_lease(task["task_id"], "alive", 60) is True


def test_a_task_whose_worker_keeps_dying_is_failed_with_the_reason(store):
    task = store.create_running(new_id(), REQUEST, "w0", lease_s=0.01)
    for attempt in range(1, 4):
        time.sleep(0.03)
        store.adopt_orphans(f"w{attempt}", lease_s=0.01, max_attempts=3)
        store.start(task["task_id"], f"w{attempt}", lease_s=0.01)
    failed = store.get(task["task_id"])
    assert failed["status"] == "failed"
    assert "died" in failed["error"] and "3 attempts" in failed["error"]


def test_source_counts_aggregate_paths_and_parse_failures(store):
    run_to_completion(store, source="llm")
    run_to_completion(store, source="llm_repaired", parse_failures=1)
    store.create_completed(REQUEST, "w", finished("fallback", parse_failures=2))
    assert store.source_counts() == {
        "llm": 1,
        "llm_repaired": 1,
        "fallback": 1,
        "parse_failures": 3,
    }


def test_source_counts_are_kept_by_the_store_statement_not_a_scan(store, store_database):
    """Lifetime totals in a counters table: deleting or purging tasks does not lower them, and
    a failed or unfinished task counts nothing."""
    done = run_to_completion(store, source="llm", parse_failures=1)
    store.create_running(new_id(), REQUEST, "w", 30)
    store.fail(store.create_running(new_id(), REQUEST, "w", 30)["task_id"], "boom")
    assert store.delete(done["task_id"])
    assert store.source_counts() == {
        "llm": 1,
        "llm_repaired": 0,
        "fallback": 0,
        "parse_failures": 1,
    }
    counted = store_database.execute("SELECT name, value FROM script_counts")
    assert dict(counted)["llm"] == 1


def test_notes_are_kept_with_the_task(store):
    notes = ["duration_s: 45 read from the prompt"]
    running = store.create_running(new_id(), REQUEST, "w", 30, notes=notes)
    at_hand = store.create_completed(REQUEST, "w", finished(), notes=notes)
    assert running["notes"] == at_hand["notes"] == notes == store.get(running["task_id"])["notes"]


def test_sqlite_writes_are_durable_on_power_loss_not_only_on_a_crash(tmp_path):
    from serve_app.store import TaskStore

    store = TaskStore(tmp_path / "tasks.db")
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_each_owner_sees_only_its_own_tasks_and_none_means_everyone(store):
    mine = store.create_running(new_id(), REQUEST, "w", 30, owner="alice")
    theirs = store.create_running(new_id(), REQUEST, "w", 30, owner="bob")
    anonymous = store.create_completed(REQUEST, "w", finished())
    assert store.get(mine["task_id"], "alice")["owner"] == "alice"
    assert store.get(theirs["task_id"], "alice") is None
    assert store.get(anonymous["task_id"], "alice") is None
    items, total = store.list_tasks(None, 0, 10, owner="alice")
    assert total == 1 and [t["task_id"] for t in items] == [mine["task_id"]]
    assert store.list_tasks(None, 0, 10)[1] == 3
    assert store.cancel(theirs["task_id"], "cancelled: x", "alice") == ("missing", None)
    assert not store.delete(theirs["task_id"], "alice")
    assert store.get(theirs["task_id"])["status"] == "running"
    assert store.delete(theirs["task_id"], "bob")


def test_cancel_fails_an_unfinished_task_once(store):
    task = store.create_running(new_id(), REQUEST, "w", 30)
    outcome, cancelled = store.cancel(task["task_id"], "cancelled: by the client")
    assert outcome == "cancelled" and cancelled["status"] == "failed"
    assert cancelled["error"] == "cancelled: by the client"
    assert store.complete(task["task_id"], "w", finished()) is None
    assert store.renew_lease(task["task_id"], "w", 30) is False
    assert store.cancel(task["task_id"], "again") == ("finished", store.get(task["task_id"]))
    assert store.cancel("nope", "x") == ("missing", None)


def test_an_idempotency_key_stores_one_task_per_owner(store):
    key = ("retry-1", "digest-a")
    first = store.create_running(new_id(), REQUEST, "w", 30, owner="alice", idempotency=key)
    again = store.create_running(new_id(), REQUEST, "w2", 30, owner="alice", idempotency=key)
    at_hand = store.create_completed(REQUEST, "w", finished(), owner="alice", idempotency=key)
    assert "replayed" not in first
    assert again["replayed"] and again["task_id"] == first["task_id"]
    assert at_hand["replayed"] and at_hand["task_id"] == first["task_id"]
    assert again["request_digest"] == "digest-a"
    other_owner = store.create_running(new_id(), REQUEST, "w", 30, owner="bob", idempotency=key)
    anonymous = store.create_running(new_id(), REQUEST, "w", 30, idempotency=key)
    anonymous_again = store.create_running(new_id(), REQUEST, "w", 30, idempotency=key)
    assert len({first["task_id"], other_owner["task_id"], anonymous["task_id"]}) == 3
    assert anonymous_again["task_id"] == anonymous["task_id"]
    assert store.list_tasks(None, 0, 10)[1] == 3
    # Deleting the task frees its key.
    assert store.delete(first["task_id"])
    fresh = store.create_running(new_id(), REQUEST, "w", 30, owner="alice", idempotency=key)
    assert "replayed" not in fresh


def test_concurrent_writers_on_one_database_store_one_task_per_idempotency_key(store_database):
    """Two store objects (two connections or pools: a store restart on SQLite, two ingress
    replicas on PostgreSQL) and 16 threads: the unique index, not a read-then-write, decides."""
    stores = [store_database.open(), store_database.open()]
    results: list[dict] = []
    start = threading.Barrier(16)

    def create(index: int) -> None:
        start.wait(timeout=30)
        results.append(
            stores[index % 2].create_running(
                new_id(), REQUEST, f"w{index}", 30, owner="o", idempotency=("k", "d")
            )
        )

    threads = [threading.Thread(target=create, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 16
    assert len({task["task_id"] for task in results}) == 1
    assert sum(1 for task in results if not task.get("replayed")) == 1
    assert stores[0].list_tasks(None, 0, 10)[1] == 1


def test_purge_deletes_finished_tasks_older_than_the_cutoff_in_batches(store, store_database):
    old = [run_to_completion(store)["task_id"] for _ in range(5)]
    failed = store.create_running(new_id(), REQUEST, "w", 30)["task_id"]
    store.fail(failed, "boom")
    unfinished = store.create_running(new_id(), REQUEST, "w", 30)["task_id"]
    store_database.execute("UPDATE tasks SET completed_at = completed_at - 100, created_at = 0")
    recent = run_to_completion(store)["task_id"]
    cutoff = time.time() - 50
    assert store.purge_finished_before(cutoff, limit=4) == 4
    assert store.purge_finished_before(cutoff, limit=4) == 2
    assert store.purge_finished_before(cutoff, limit=4) == 0
    assert all(store.get(task_id) is None for task_id in [*old, failed])
    assert store.get(unfinished)["status"] == "running"
    assert store.get(recent)["status"] == "completed"


def test_a_row_whose_json_is_damaged_is_listed_with_what_is_unreadable(store, store_database):
    task = store.create_running(new_id(), REQUEST, "w", 30)
    store_database.execute(
        "UPDATE tasks SET request_json = '{not json', notes_json = '[' WHERE task_id = :id",
        id=task["task_id"],
    )
    [damaged], total = store.list_tasks(None, 0, 10)
    assert total == 1 and damaged["request"] is None and damaged["notes"] == []
    assert "stored request is not JSON" in damaged["unreadable"]
    assert "stored notes is not JSON" in damaged["unreadable"]


def test_two_replicas_sweeping_at_once_never_adopt_one_orphan_twice(store_database):
    """Two store objects (on PostgreSQL: two pools, as two ingress replicas have) sweep the
    same 40 orphans from 8 threads at once: every orphan is adopted exactly once."""
    stores = [store_database.open(), store_database.open()]
    orphans = {
        stores[0].create_running(new_id(), REQUEST, "dead", 0.01)["task_id"] for _ in range(40)
    }
    time.sleep(0.05)
    adopted: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def sweep(index: int) -> None:
        store, worker = stores[index % 2], f"w{index}"
        start.wait(timeout=30)
        for _ in range(20):  # bounded; each round takes up to 3
            try:
                taken = store.adopt_orphans(worker, lease_s=60, max_attempts=3, limit=3)
            except Exception as error:  # SQLite: the other connection's lock past the timeout
                errors.append(error)
                continue
            adopted.extend((task["task_id"], worker) for task in taken)

    threads = [threading.Thread(target=sweep, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    ids = [task_id for task_id, _ in adopted]
    assert sorted(ids) == sorted(orphans), f"adopted twice or missed; errors: {errors[:3]}"
    for task_id, worker in adopted:  # the row names the one worker that adopted it
        assert stores[1].get(task_id)["worker_id"] == worker
    if store_database.backend == "postgresql":
        assert errors == []
