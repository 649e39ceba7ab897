"""The task runner's own decisions on a real SQLite file, without Ray: stopping work it no
longer holds, sweeping orphans one row at a time, idempotent submission, retention.

The store is the real TaskStore behind a handle-shaped adapter; the pipeline is a stand-in
whose script takes as long as the test says, so a task is "running" exactly while it needs.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from sqlalchemy import text

from deployments.storyboard.models import ScriptRequest
from serve_app.config import Settings
from serve_app.errors import FieldError, StoreUnavailable
from serve_app.task_store import TaskStore
from serve_app.tasks import TaskRunner

LEASE_S = 5.0  # the shortest the settings allow; renewals every 5/3 s
REQUEST = ScriptRequest(prompt="制作一段关于森林探险的短视频")
SCRIPT = {"title": "t", "language": "zh", "total_duration": 5.0, "scenes": []}


class LocalHandle:
    """`handle.method.remote(...)` on an in-process object, like a Serve DeploymentHandle."""

    def __init__(self, target):
        self._target = target

    def __getattr__(self, name):
        method = getattr(self._target, name)

        class Method:
            @staticmethod
            def remote(*args) -> asyncio.Future:
                async def call():
                    return method(*args)

                return asyncio.ensure_future(call())

        return Method


class HeldPipeline:
    """Writes a script once `release` is set; records whether its work was cancelled."""

    def __init__(self):
        self.release = asyncio.Event()
        self.started = 0
        self.cancelled = 0

    def named(self, request):
        return request  # one model: the request as sent

    def script_at_hand(self, request):
        return None

    async def write_script(self, request, on_stage=None, watcher=None):
        self.started += 1
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return {"script": SCRIPT, "source": "llm", "generation_ms": 1.0}


def make_runner(tmp_path, **settings) -> tuple[TaskRunner, TaskStore, HeldPipeline]:
    store = TaskStore(tmp_path / "tasks.db")
    pipeline = HeldPipeline()
    runner = TaskRunner(LocalHandle(store), pipeline, Settings(task_lease_s=LEASE_S, **settings))
    return runner, store, pipeline


def sql(store: TaskStore, statement: str, **params) -> None:
    """Change rows directly, as another writer (or time) would."""
    with store.engine.begin() as connection:
        connection.execute(text(statement), params)


async def until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@pytest.mark.parametrize("taken", ["deleted", "taken over", "cancelled"])
def test_a_renewal_the_store_refuses_stops_the_local_work(tmp_path, taken):
    async def scenario():
        runner, store, pipeline = make_runner(tmp_path)
        task = await runner.submit(REQUEST)
        task_id = task["task_id"]
        await until(lambda: pipeline.started, 5)
        if taken == "deleted":
            store.delete(task_id)
        elif taken == "taken over":
            sql(store, "UPDATE tasks SET worker_id = 'other' WHERE task_id = :id", id=task_id)
        else:
            store.cancel(task_id, "cancelled: elsewhere")
        stopped = await until(lambda: runner.unfinished == 0, 3 * LEASE_S)
        return stopped, pipeline, store.get(task_id)

    stopped, pipeline, row = asyncio.run(scenario())
    assert stopped and pipeline.cancelled == 1
    if taken == "taken over":  # the new holder's row is left as it is
        assert row["status"] == "running" and row["worker_id"] == "other"


def test_renewals_that_fail_keep_the_work_until_the_lease_would_have_run_out(tmp_path):
    async def scenario():
        runner, store, pipeline = make_runner(tmp_path)
        task = await runner.submit(REQUEST)
        await until(lambda: pipeline.started, 5)
        locker = sqlite3.connect(store.path, timeout=0)
        locker.execute("BEGIN IMMEDIATE")  # every write of the store now fails: "locked"
        started = time.monotonic()
        # The first renewal (at lease/3) fails; the work must still be running after it.
        await asyncio.sleep(LEASE_S / 3 + 2.5)
        running_after_first_failure = runner.unfinished == 1 and pipeline.cancelled == 0
        stopped = await until(lambda: runner.unfinished == 0, 3 * LEASE_S)
        held_for = time.monotonic() - started
        locker.rollback()
        return running_after_first_failure, stopped, held_for, pipeline, task

    running_after_first_failure, stopped, held_for, pipeline, _ = asyncio.run(scenario())
    assert running_after_first_failure
    assert stopped and pipeline.cancelled == 1
    assert held_for >= LEASE_S / 3  # ordering, not speed: it outlived a failed renewal


def test_the_orphan_sweep_fails_a_row_that_no_longer_validates_and_runs_the_others(tmp_path):
    async def scenario():
        runner, store, pipeline = make_runner(tmp_path)
        pipeline.release.set()
        ids = {}
        for name, request_json in [
            ("empty prompt", '{"prompt": ""}'),
            ("not json", "{oops"),
            ("unknown field", '{"prompt": "ok", "colour": "red"}'),
            ("good", '{"prompt": "city night walk"}'),
        ]:
            task = store.create_running(f"id-{len(ids)}", {"prompt": "x"}, "dead", 0.01)
            sql(
                store,
                "UPDATE tasks SET request_json = :json WHERE task_id = :id",
                json=request_json,
                id=task["task_id"],
            )
            ids[name] = task["task_id"]
        await asyncio.sleep(0.05)
        adopted = await runner.adopt_orphans_once()
        await until(lambda: runner.unfinished == 0, 10)
        return adopted, ids, {name: store.get(task_id) for name, task_id in ids.items()}

    adopted, ids, rows = asyncio.run(scenario())
    assert adopted == [ids["good"]]
    assert rows["good"]["status"] == "completed"
    for name in ("empty prompt", "not json", "unknown field"):
        assert rows[name]["status"] == "failed", name
        assert rows[name]["error"].startswith("invalid stored request:"), rows[name]["error"]
    assert "prompt" in rows["empty prompt"]["error"]
    assert "not JSON" in rows["not json"]["error"]
    assert "colour" in rows["unknown field"]["error"]


def test_cancel_fails_the_task_and_stops_its_generation(tmp_path):
    async def scenario():
        runner, store, pipeline = make_runner(tmp_path)
        task = await runner.submit(REQUEST)
        await until(lambda: pipeline.started, 5)
        runner.cancel(task["task_id"], "cancelled: by the client")
        await until(lambda: runner.unfinished == 0, 5)
        return pipeline, store.get(task["task_id"])

    pipeline, row = asyncio.run(scenario())
    assert pipeline.cancelled == 1
    assert row["status"] == "failed" and row["error"] == "cancelled: by the client"


def test_an_idempotency_key_replays_the_first_task_and_refuses_another_body(tmp_path):
    async def scenario():
        runner, store, pipeline = make_runner(tmp_path)
        tasks = await asyncio.gather(
            *(runner.submit(REQUEST, "alice", "retry-1") for _ in range(8))
        )
        with pytest.raises(FieldError) as refused:
            await runner.submit(ScriptRequest(prompt="another"), "alice", "retry-1")
        other_owner = await runner.submit(REQUEST, "bob", "retry-1")
        pipeline.release.set()
        await until(lambda: runner.unfinished == 0, 5)
        return tasks, refused.value, other_owner, store, pipeline

    tasks, refused, other_owner, store, pipeline = asyncio.run(scenario())
    assert len({task["task_id"] for task in tasks}) == 1
    assert sum(1 for task in tasks if task.get("replayed")) == 7
    assert refused.field == "header.idempotency-key" and "different request body" in refused.problem
    assert other_owner["task_id"] != tasks[0]["task_id"]
    assert pipeline.started == 2  # one generation per stored task, none for a replay
    assert store.list_tasks(None, 0, 10)[1] == 2


def test_a_wait_on_a_task_another_worker_runs_ends_when_the_store_says_it_finished(tmp_path):
    async def scenario():
        runner, store, _ = make_runner(tmp_path)
        task = store.create_running("elsewhere", {"prompt": "x"}, "other-worker", 60)
        waiting = asyncio.ensure_future(runner.wait(task["task_id"], 30))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        store.complete(task["task_id"], "other-worker", {"script": SCRIPT, "source": "llm"})
        return await asyncio.wait_for(waiting, 10)

    assert asyncio.run(scenario())["status"] == "completed"


def test_retention_deletes_finished_tasks_past_the_period_and_keeps_the_rest(tmp_path):
    async def scenario(retention_s):
        runner, store, pipeline = make_runner(
            tmp_path / str(retention_s), task_retention_s=retention_s
        )
        old = store.create_completed({"prompt": "x"}, "w", {"script": SCRIPT, "source": "llm"})
        sql(store, "UPDATE tasks SET completed_at = completed_at - 7200")
        recent = store.create_completed({"prompt": "y"}, "w", {"script": SCRIPT, "source": "llm"})
        running = await runner.submit(REQUEST)
        sql(store, "UPDATE tasks SET created_at = created_at - 7200")
        deleted = await runner.purge_expired_once()
        pipeline.release.set()
        await until(lambda: runner.unfinished == 0, 5)
        return deleted, [store.get(t["task_id"]) is not None for t in (old, recent, running)]

    assert asyncio.run(scenario(3600.0)) == (1, [False, True, True])
    assert asyncio.run(scenario(0.0)) == (0, [True, True, True])  # 0 = keep forever


def test_a_store_that_cannot_write_is_store_unavailable(tmp_path):
    async def scenario():
        runner, store, _ = make_runner(tmp_path)
        locker = sqlite3.connect(store.path, timeout=0)
        locker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreUnavailable, match="database is locked") as refused:
                await runner.submit(REQUEST, None, "k")
        finally:
            locker.rollback()
        return refused.value, runner

    refused, runner = asyncio.run(scenario())
    assert refused.retry_after_s == 5 and runner.unfinished == 0
