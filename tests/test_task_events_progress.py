"""Task progress (serve_app/task_progress.py, TaskStore.set_progress) and the events a stream
sends (serve_app/task_events.py), against a real TaskStore in-process (SQLite; the store's
own draft and write tests on both backends)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time

import pytest
import sqlalchemy

from serve_app.protocol import TaskStage
from serve_app.store_client import StoreClient
from serve_app.task_events import scene_cursor, task_events
from serve_app.task_progress import STAGE_PROGRESS, ProgressReporter, progress_for
from serve_app.task_responses import task_json
from serve_app.task_store import TaskStore
from tests.test_task_runner import REQUEST, SCRIPT, LocalHandle

OUTCOME = {"script": SCRIPT, "source": "llm", "generation_ms": 1.0}


def running_task(store: TaskStore, worker: str = "w1") -> str:
    store.create_running("t1", REQUEST.model_dump(mode="json"), worker, 60.0)
    return "t1"


def test_stages_only_move_forward_and_tokens_fill_the_generating_band():
    order = [TaskStage.QUEUED, TaskStage.GENERATING, TaskStage.PARSING, TaskStage.REPAIRING]
    order += [TaskStage.WRITING_FALLBACK, TaskStage.COMPLETED]
    assert [STAGE_PROGRESS[s] for s in order] == sorted(STAGE_PROGRESS[s] for s in order)
    values = [progress_for(TaskStage.GENERATING, n, 100) for n in range(0, 150, 10)]
    assert values == sorted(values) and values[0] == 10 and values[-1] < STAGE_PROGRESS["parsing"]
    assert progress_for(TaskStage.PARSING, 50, 100) == STAGE_PROGRESS[TaskStage.PARSING]


def test_the_store_never_takes_progress_back_nor_writes_a_finished_or_foreign_task(tmp_path):
    store = TaskStore(tmp_path / "tasks.db")
    task_id = running_task(store)
    assert store.set_progress(task_id, "w1", 40, "generating", 120)
    assert not store.set_progress(task_id, "w1", 30, "generating", 90)  # a late write
    assert not store.set_progress(task_id, "w2", 50, "parsing", 200)  # not its worker
    row = store.get(task_id)
    assert (row["progress"], row["stage"], row["generated_tokens"]) == (40, "generating", 120)
    store.complete(task_id, "w1", OUTCOME)
    assert not store.set_progress(task_id, "w1", 99, "parsing", 300)
    assert store.get(task_id)["progress"] == 100


def test_an_adopted_task_keeps_its_progress(tmp_path):
    store = TaskStore(tmp_path / "tasks.db")
    task_id = running_task(store)
    store.set_progress(task_id, "w1", 60, "generating", 500)
    store.adopt_orphans("w2", 60.0, 3)  # lease not expired: nothing adopted
    started = store.start(task_id, "w2", 60.0)
    assert (started["progress"], started["stage"]) == (60, "queued")


def test_the_reporter_writes_stages_at_once_and_tokens_at_most_every_interval(tmp_path):
    store = TaskStore(tmp_path / "tasks.db")
    task_id = running_task(store)
    written: list[tuple[int, str, int]] = []

    async def write(progress, stage, tokens, draft):
        written.append((progress, stage, tokens))
        return store.set_progress(task_id, "w1", progress, stage, tokens, draft)

    async def scenario():
        reporter = ProgressReporter(write, min_interval_s=0.3, progress=10)
        reporter.enter(TaskStage.GENERATING)
        await asyncio.sleep(0.05)
        started = time.monotonic()
        for tokens in range(1, 201):  # 200 tokens over ~0.6 s
            reporter.tokens(tokens, 200)
            await asyncio.sleep(0.003)
        reporter.enter(TaskStage.PARSING)
        await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        await reporter.close()
        return reporter, elapsed

    reporter, elapsed = asyncio.run(scenario())
    token_writes = [w for w in written if w[1] == "generating"][1:]
    assert written[0] == (10, "generating", 0)
    assert 1 <= len(token_writes) <= elapsed / 0.3 + 1  # throttled, not one per token
    assert written[-1] == (70, "parsing", 200)  # the stage change came through at once
    assert [w[0] for w in written] == sorted(w[0] for w in written)
    row = store.get(task_id)
    assert (row["progress"], row["stage"], row["generated_tokens"]) == (70, "parsing", 200)
    assert reporter.writes == len(written)


def test_a_failing_write_does_not_stop_the_reporter():
    calls = []

    async def write(progress, stage, tokens, draft):
        calls.append(stage)
        if len(calls) == 1:
            raise RuntimeError("store away")
        return True

    async def scenario():
        reporter = ProgressReporter(write, min_interval_s=0.1)
        reporter.enter(TaskStage.GENERATING)
        await asyncio.sleep(0.05)
        reporter.enter(TaskStage.PARSING)
        await asyncio.sleep(0.05)
        await reporter.close()

    asyncio.run(scenario())
    assert calls == ["generating", "parsing"]


def collect(store: TaskStore, task_id: str, change, poll_s: float = 0.05, cursor=(0, 0)) -> list:
    """The events of a stream over `store`, while `change(store)` runs beside it."""
    client = StoreClient(LocalHandle(store), 1)

    async def scenario():
        events = []
        stream = task_events(client, store.get(task_id), None, poll_s, task_json, cursor)

        async def read():
            async for event in stream:
                events.append(event)

        reading = asyncio.create_task(read())
        await change(store)
        await asyncio.wait_for(reading, 10)
        return events

    return asyncio.run(scenario())


def test_a_stream_follows_the_task_and_ends_after_it_finishes(tmp_path):
    store = TaskStore(tmp_path / "tasks.db")
    task_id = running_task(store)

    async def change(store):
        for progress, stage, tokens in [(10, "generating", 0), (40, "generating", 90)]:
            await asyncio.sleep(0.12)
            store.set_progress(task_id, "w1", progress, stage, tokens)
        await asyncio.sleep(0.12)
        store.set_progress(task_id, "w1", 70, "parsing", 200)
        await asyncio.sleep(0.12)
        store.complete(task_id, "w1", OUTCOME)

    events = collect(store, task_id, change)
    names = [event.event for event in events]
    assert names[-1] == "done" and set(names[:-1]) == {"status"}
    statuses = [json.loads(event.data) for event in events[:-1]]
    assert [s["stage"] for s in statuses] == [
        "queued",
        "generating",
        "generating",
        "parsing",
        "completed",
    ]
    assert [s["progress"] for s in statuses] == [10, 10, 40, 70, 100]
    assert statuses[2]["generated_tokens"] == 90
    done = json.loads(events[-1].data)
    assert done == json.loads(task_json(store.get(task_id)))
    assert [event.id for event in events] == [None] * len(events)  # only scenes carry ids


def test_a_finished_task_sends_its_state_and_ends(tmp_path):
    store = TaskStore(tmp_path / "tasks.db")
    task_id = running_task(store)
    store.complete(task_id, "w1", OUTCOME)

    async def change(store):
        pass

    events = collect(store, task_id, change)
    assert [event.event for event in events] == ["status", "done"]
    assert json.loads(events[0].data)["status"] == "completed"


def test_a_deleted_task_ends_the_stream_with_an_error_event(tmp_path):
    store = TaskStore(tmp_path / "tasks.db")
    task_id = running_task(store)

    async def change(store):
        await asyncio.sleep(0.1)
        store.delete(task_id)

    events = collect(store, task_id, change)
    assert [event.event for event in events] == ["status", "error"]
    assert json.loads(events[-1].data)["error"]["type"] == "not_found"


def scene(number: int) -> dict:
    return {"scene_number": number, "description": f"scene {number}", "duration": 5.0}


def draft(number: int, scenes: int) -> dict:
    return {"draft": number, "scenes": [scene(n) for n in range(1, scenes + 1)]}


@pytest.fixture
def any_store(store_database):
    return store_database.open()


def test_the_draft_is_stored_with_the_progress_and_goes_when_the_task_finishes(any_store):
    store = any_store
    for task_id, finish in (("t1", "complete"), ("t2", "fail")):
        store.create_running(task_id, REQUEST.model_dump(mode="json"), "w1", 60.0)
        assert store.get(task_id)["draft"] is None
        assert store.set_progress(task_id, "w1", 20, "generating", 50, draft(1, 1))
        assert store.get(task_id)["draft"] == draft(1, 1)
        assert store.set_progress(task_id, "w1", 30, "generating", 80)  # no draft: kept
        assert store.get(task_id)["draft"] == draft(1, 1)
        assert not store.set_progress(task_id, "w2", 40, "generating", 90, draft(9, 3))
        assert store.get(task_id)["draft"] == draft(1, 1)
        started = store.start(task_id, "w2", 60.0)  # adopted: the adopter's drafts go on
        assert started["draft"] == draft(1, 1)
        if finish == "complete":
            finished = store.complete(task_id, "w2", OUTCOME)
        else:
            finished = store.fail(task_id, "broken")
        assert finished["draft"] is None and store.get(task_id)["draft"] is None


def test_a_damaged_draft_is_no_draft_and_the_task_still_reads(store_database):
    store = store_database.open()
    running_task(store)
    store_database.execute("UPDATE tasks SET draft_json = '{not json' WHERE task_id = 't1'")
    task = store.get("t1")
    assert task["draft"] is None and "unreadable" not in task


def test_progress_writes_leave_the_sqlite_connection_as_durable_as_before(tmp_path):
    store = TaskStore(tmp_path / "tasks.db")
    task_id = running_task(store)

    def synchronous() -> int:
        with store.engine.connect() as connection:
            return connection.connection.dbapi_connection.execute("PRAGMA synchronous").fetchone()[
                0
            ]

    full = synchronous()
    assert full == 2  # FULL
    assert store.set_progress(task_id, "w1", 20, "generating", 5, draft(1, 1))
    assert synchronous() == full
    # a write that fails inside (the file locked by another writer past the busy timeout)
    # puts FULL back too
    other = sqlite3.connect(tmp_path / "tasks.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlalchemy.exc.OperationalError, match="locked"):
            store.set_progress(task_id, "w1", 30, "generating", 6)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert synchronous() == full
    assert store.get(task_id)["progress"] == 20


def test_the_reporter_writes_each_draft_with_its_scenes(tmp_path):
    store = TaskStore(tmp_path / "tasks.db")
    task_id = running_task(store)
    drafts: list[dict | None] = []

    async def write(progress, stage, tokens, draft):
        drafts.append(draft)
        return store.set_progress(task_id, "w1", progress, stage, tokens, draft)

    async def scenario():
        reporter = ProgressReporter(write, min_interval_s=0.1, progress=10, draft=3)
        reporter.enter(TaskStage.GENERATING)  # an adopted task's next reply: draft 4
        await asyncio.sleep(0.02)
        reporter.scene(scene(1))
        reporter.tokens(20, 100)
        await asyncio.sleep(0.15)
        assert store.get(task_id)["draft"] == {"draft": 4, "scenes": [scene(1)]}
        reporter.tokens(30, 100)  # tokens only: the draft is not written again
        await asyncio.sleep(0.15)
        reporter.enter(TaskStage.PARSING)
        reporter.enter(TaskStage.REPAIRING)  # the repair turn: a new draft, no scenes yet
        await asyncio.sleep(0.05)
        await reporter.close()

    asyncio.run(scenario())
    assert drafts[0] == {"draft": 4, "scenes": []}
    assert {"draft": 4, "scenes": [scene(1)]} in drafts
    assert drafts[-1] == {"draft": 5, "scenes": []}
    assert None in drafts  # the token-only write
    assert store.get(task_id)["draft"] == {"draft": 5, "scenes": []}


def scene_events(events) -> list[dict]:
    return [json.loads(event.data) for event in events if event.event == "scene"]


def test_a_stream_sends_each_scene_once_in_order_and_a_new_draft_from_its_first(tmp_path):
    store = TaskStore(tmp_path / "tasks.db")
    task_id = running_task(store)

    async def change(store):
        steps = [
            (20, draft(1, 1)),
            (30, draft(1, 1)),  # no new scene: nothing sent again
            (40, draft(1, 3)),
            (75, draft(2, 0)),  # the repair turn begins
            (80, draft(2, 2)),
        ]
        for progress, stored in steps:
            await asyncio.sleep(0.12)
            store.set_progress(task_id, "w1", progress, "generating", progress, stored)
        await asyncio.sleep(0.12)
        store.complete(task_id, "w1", OUTCOME)

    events = collect(store, task_id, change)
    scenes = scene_events(events)
    assert [(s["draft"], s["index"]) for s in scenes] == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1)]
    assert [s["scene"]["description"] for s in scenes] == [
        "scene 1",
        "scene 2",
        "scene 3",
        "scene 1",
        "scene 2",
    ]
    ids = [event.id for event in events if event.event == "scene"]
    assert ids == ["1.0", "1.1", "1.2", "2.0", "2.1"]
    assert events[-1].event == "done"


def test_a_reconnecting_client_gets_only_the_scenes_after_its_last_event_id(tmp_path):
    store = TaskStore(tmp_path / "tasks.db")
    task_id = running_task(store)
    store.set_progress(task_id, "w1", 40, "generating", 90, draft(1, 3))

    async def finish(store):
        await asyncio.sleep(0.12)
        store.set_progress(task_id, "w1", 45, "generating", 95, draft(1, 4))
        await asyncio.sleep(0.12)
        store.complete(task_id, "w1", OUTCOME)

    events = collect(store, task_id, finish, cursor=scene_cursor("1.1"))
    assert [(s["draft"], s["index"]) for s in scene_events(events)] == [(1, 2), (1, 3)]
    # a Last-Event-ID of an older draft (or none, or garbage): the current draft from its first
    for last_event_id in ("0.5", None, "", "status-7", "1.x"):
        store = TaskStore(tmp_path / "again.db")
        running_task(store)
        store.set_progress("t1", "w1", 40, "generating", 90, draft(1, 2))
        events = collect(store, "t1", finish_at_once, cursor=scene_cursor(last_event_id))
        assert [s["index"] for s in scene_events(events)] == [0, 1], last_event_id
        store.close()
        (tmp_path / "again.db").unlink()


async def finish_at_once(store):
    await asyncio.sleep(0.12)
    store.complete("t1", "w1", OUTCOME)


def test_a_finished_task_sends_no_scenes(tmp_path):
    store = TaskStore(tmp_path / "tasks.db")
    task_id = running_task(store)
    store.set_progress(task_id, "w1", 40, "generating", 90, draft(1, 2))
    store.complete(task_id, "w1", OUTCOME)
    events = collect(store, task_id, lambda store: asyncio.sleep(0))
    assert [event.event for event in events] == ["status", "done"]
