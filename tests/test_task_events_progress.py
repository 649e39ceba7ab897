"""Task progress (serve_app/task_progress.py, TaskStore.set_progress) and the events a stream
sends (serve_app/task_events.py), against a real SQLite TaskStore in-process."""

from __future__ import annotations

import asyncio
import json
import time

from serve_app.protocol import TaskStage
from serve_app.store_client import StoreClient
from serve_app.task_events import task_events
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

    async def write(progress, stage, tokens):
        written.append((progress, stage, tokens))
        return store.set_progress(task_id, "w1", progress, stage, tokens)

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

    async def write(progress, stage, tokens):
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


def collect(store: TaskStore, task_id: str, change, poll_s: float = 0.05) -> list:
    """The events of a stream over `store`, while `change(store)` runs beside it."""
    client = StoreClient(LocalHandle(store), 1)

    async def scenario():
        events = []
        stream = task_events(client, store.get(task_id), None, poll_s, task_json)

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
    assert [int(event.id) for event in events] == list(range(1, len(events) + 1))


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
