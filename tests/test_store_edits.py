"""Edit jobs in the task store (serve_app/store/edits.py), on a real SQLite file and a real
PostgreSQL database (tests/conftest.py, `store_database`)."""

import threading
import time
import uuid

import pytest

REQUEST = {"prompt": "制作一段关于森林探险的短视频", "language": "auto"}
PARAMS = {"scene_number": 2, "instruction": None}


def script(title: str) -> dict:
    return {"title": title, "language": "zh", "total_duration": 5.0, "scenes": []}


@pytest.fixture
def store(store_database):
    return store_database.open()


def completed(store, owner=None) -> str:
    outcome = {"script": script("as written"), "source": "fallback"}
    return store.create_completed(REQUEST, "w", outcome, owner=owner)["task_id"]


def new_edit(store, task_id, worker="w1", owner=None, lease_s=30.0, key=None, digest="d"):
    idempotency = (key, digest) if key else None
    return store.create_edit(
        uuid.uuid4().hex, task_id, owner, "regenerate", PARAMS, None, worker, lease_s, idempotency
    )


def test_an_edit_is_stored_running_and_its_revision_lands_with_its_completion(store):
    task_id = completed(store, owner="alice")
    edit = new_edit(store, task_id, owner="alice")
    assert edit["status"] == "running" and edit["attempts"] == 1 and edit["params"] == PARAMS
    assert store.get_edit(task_id, edit["edit_id"], "alice") == edit
    outcome, task = store.finish_edit(edit["edit_id"], "w1", script("two"), "llm", "scene 2", 1)
    assert outcome == "added" and task["revision"] == 2 and task["result"]["title"] == "two"
    done = store.get_edit(task_id, edit["edit_id"])
    assert done["status"] == "completed" and done["revision"] == 2
    assert (done["source"], done["note"], done["lease_until"]) == ("llm", "scene 2", None)
    assert [e["edit_id"] for e in store.list_edits(task_id, "alice")] == [edit["edit_id"]]


def test_an_edit_is_seen_only_through_its_task_and_its_owner(store):
    task_id, other = completed(store, owner="alice"), completed(store, owner="alice")
    edit_id = new_edit(store, task_id, owner="alice")["edit_id"]
    assert store.get_edit(task_id, edit_id, "bob") is None
    assert store.get_edit(other, edit_id, "alice") is None  # not an edit of that task
    assert store.list_edits(task_id, "bob") is None
    assert store.get_edit(task_id, edit_id, None)["edit_id"] == edit_id  # an admin key's view


def test_a_worker_that_lost_the_edit_stores_nothing(store, store_database):
    task_id = completed(store)
    edit_id = new_edit(store, task_id)["edit_id"]
    store_database.execute("UPDATE edits SET worker_id = 'w2' WHERE edit_id = :id", id=edit_id)
    assert store.finish_edit(edit_id, "w1", script("x"), "llm", "n", 1) == ("lost", None)
    assert not store.renew_edit_lease(edit_id, "w1", 30)
    assert store.fail_edit(edit_id, "boom", 500, worker_id="w1") is None
    assert store.get(task_id)["revision"] == 1 and store.list_revisions(task_id)[0]["revision"] == 1
    assert store.renew_edit_lease(edit_id, "w2", 30)


def test_a_stale_base_is_a_conflict_and_the_edit_stays_running(store):
    task_id = completed(store)
    edit_id = new_edit(store, task_id)["edit_id"]
    store.add_revision(task_id, None, script("two"), "edit", "first", 1)
    outcome, task = store.finish_edit(edit_id, "w1", script("lost?"), "llm", "n", 1)
    assert outcome == "conflict" and task["revision"] == 2
    assert store.get_edit(task_id, edit_id)["status"] == "running"
    assert store.finish_edit(edit_id, "w1", script("three"), "llm", "n", 2)[0] == "added"


def test_failing_an_edit_records_the_status_a_waiting_client_gets(store):
    task_id = completed(store)
    edit_id = new_edit(store, task_id)["edit_id"]
    failed = store.fail_edit(edit_id, "no scene 9", 404, worker_id="w1")
    assert (failed["status"], failed["error_status"], failed["error"]) == (
        "failed",
        404,
        "no scene 9",
    )
    assert store.fail_edit(edit_id, "again", 500) is None  # finished: left as it is


def test_orphans_are_adopted_once_and_failed_after_the_last_attempt(store, store_database):
    task_id = completed(store)
    orphan = new_edit(store, task_id, worker="dead", lease_s=0.01)["edit_id"]
    tired = new_edit(store, task_id, worker="dead", lease_s=0.01)["edit_id"]
    alive = new_edit(store, task_id, worker="w1", lease_s=30)["edit_id"]
    store_database.execute("UPDATE edits SET attempts = 3 WHERE edit_id = :id", id=tired)
    time.sleep(0.05)
    [adopted] = store.adopt_orphan_edits("w2", 30, max_attempts=3)
    assert adopted["edit_id"] == orphan and adopted["worker_id"] == "w2"
    assert adopted["attempts"] == 2 and adopted["status"] == "running"
    assert store.adopt_orphan_edits("w3", 30, max_attempts=3) == []
    failed = store.get_edit(task_id, tired)
    assert failed["status"] == "failed" and failed["error"].startswith("abandoned")
    assert store.get_edit(task_id, alive)["worker_id"] == "w1"


def test_an_idempotency_key_stores_one_edit_per_owner(store):
    task_id = completed(store, owner="alice")
    first = new_edit(store, task_id, owner="alice", key="k1")
    again = new_edit(store, task_id, owner="alice", key="k1", digest="other")
    assert again["replayed"] and again["edit_id"] == first["edit_id"]
    assert again["request_digest"] == "d"  # the caller compares digests
    assert not new_edit(store, task_id, owner="bob", key="k1").get("replayed")
    assert len(store.list_edits(task_id)) == 2


def test_edits_go_with_their_task(store, store_database):
    task_id, kept = completed(store), completed(store)
    new_edit(store, task_id)
    new_edit(store, kept)
    assert store.delete(task_id)
    remaining = store_database.execute("SELECT task_id FROM edits")
    assert [row[0] for row in remaining] == [kept]


def test_concurrent_edits_each_store_one_revision_and_none_is_lost(store_database):
    """Two store objects (two connections or pools), 10 edits finishing at once from the
    revision each read, reading again on a conflict (as the runner does): every edit lands,
    revisions 2..11 once each, and every edit records the revision it stored."""
    stores = [store_database.open(), store_database.open()]
    task_id = completed(stores[0])
    ids = [new_edit(stores[i % 2], task_id, worker=f"w{i}")["edit_id"] for i in range(10)]
    start = threading.Barrier(10)
    landed: dict[str, int] = {}

    def finish(index: int) -> None:
        store, edit_id = stores[index % 2], ids[index]
        start.wait(timeout=30)
        for _ in range(50):
            base = store.get(task_id)["revision"]
            outcome, task = store.finish_edit(
                edit_id, f"w{index}", script(f"edit {index}"), "llm", f"n{index}", base
            )
            if outcome == "added":
                landed[edit_id] = task["revision"]
                return
            assert outcome == "conflict"

    threads = [threading.Thread(target=finish, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(landed.values()) == list(range(2, 12))
    for edit_id, revision in landed.items():
        assert stores[0].get_edit(task_id, edit_id)["revision"] == revision
    assert [r["revision"] for r in stores[0].list_revisions(task_id)] == list(range(1, 12))
