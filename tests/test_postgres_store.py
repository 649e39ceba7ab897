"""The task runner on a real PostgreSQL server (tests/conftest.py, `postgres_server`), as two
ingress replicas use it: each with its own pool (a PostgresStore opened per runner), no Ray.

Two replicas racing for the same orphans run each task once; the server restarted while tasks
are being submitted gives StoreUnavailable (503 + Retry-After) meanwhile, and every task that was
accepted is in the database afterwards and finishes.
"""

from __future__ import annotations

import asyncio
import collections
import time

from pydantic import SecretStr

from deployments.storyboard.models import ScriptRequest
from serve_app.config import Settings
from serve_app.errors import StoreUnavailable
from serve_app.store import TaskStore
from serve_app.store.target import PostgresStore
from serve_app.tasks import TaskRunner

LEASE_S = 5.0  # the shortest the settings allow
SCRIPT = {"title": "t", "language": "zh", "total_duration": 5.0, "scenes": []}


class CountingPipeline:
    """Writes a script after `delay_s`, counting how often each prompt was written."""

    def __init__(self, delay_s: float = 0.05):
        self.delay_s = delay_s
        self.written: collections.Counter[str] = collections.Counter()

    def named(self, request):
        return request  # one model: the request as sent

    def script_at_hand(self, request):
        return None

    async def write_script(self, request, on_stage=None, watcher=None):
        await asyncio.sleep(self.delay_s)
        self.written[request.prompt] += 1
        return {"script": SCRIPT, "source": "llm", "generation_ms": 1.0}


def runner_on(server, database: str, pipeline, **settings) -> TaskRunner:
    target = PostgresStore(server.url(database), SecretStr(server.password), None, 4)
    return TaskRunner(target, pipeline, Settings(task_lease_s=LEASE_S, **settings))


async def until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def test_two_replicas_racing_for_the_same_orphans_run_each_task_once(postgres_server):
    database = postgres_server.create_database()
    seed = TaskStore(postgres_server.url(database), password=postgres_server.password)
    prompts = [f"森林探险 第{i}集" for i in range(24)]
    ids = [
        seed.create_running(f"orphan-{i}", {"prompt": prompt}, "dead", 0.01)["task_id"]
        for i, prompt in enumerate(prompts)
    ]

    async def scenario():
        pipeline = CountingPipeline()
        # At most 4 tasks each at a time: the orphans take several sweeps of both replicas.
        runners = [
            runner_on(postgres_server, database, pipeline, max_unfinished_tasks=4) for _ in range(2)
        ]
        await asyncio.sleep(0.05)
        swept: list[list[str]] = []
        for _ in range(100):  # bounded; both replicas sweep at once, twice each, per round
            swept += await asyncio.gather(*(r.adopt_orphans_once() for r in runners * 2))
            if sum(map(len, swept)) >= len(ids):
                break
            await asyncio.sleep(0.05)

        async def all_finished() -> bool:
            return all(not r.unfinished for r in runners)

        assert await until(all_finished, 30)
        return pipeline, swept, runners

    pipeline, swept, runners = asyncio.run(scenario())
    adopted = [task_id for batch in swept for task_id in batch]
    assert sorted(adopted) == sorted(ids)  # each orphan adopted by one sweep, none twice
    assert pipeline.written == collections.Counter(prompts)  # each script written once
    workers = {runner.worker_id for runner in runners}
    for task_id in ids:
        task = seed.get(task_id)
        assert task["status"] == "completed" and task["attempts"] == 2
        assert task["worker_id"] in workers
    assert {seed.get(task_id)["worker_id"] for task_id in ids} == workers  # both took a share


def test_a_database_restart_under_load_is_503_meanwhile_and_loses_nothing_accepted(
    postgres_server,
):
    database = postgres_server.create_database()
    check = TaskStore(postgres_server.url(database), password=postgres_server.password)

    async def scenario():
        pipeline = CountingPipeline(delay_s=0.2)
        runner = runner_on(postgres_server, database, pipeline)
        accepted: list[str] = []
        refused: list[StoreUnavailable] = []
        phase = {"now": "before"}
        seen_by_phase: collections.Counter[tuple[str, str]] = collections.Counter()

        async def client(index: int) -> None:
            for attempt in range(400):  # bounded: the loop also ends with the scenario
                if phase["now"] == "done":
                    return
                request = ScriptRequest(prompt=f"城市夜景 {index}-{attempt}")
                try:
                    task = await runner.submit(request)
                except StoreUnavailable as error:
                    refused.append(error)
                    seen_by_phase[(phase["now"], "503")] += 1
                    await asyncio.sleep(0.05)
                    continue
                accepted.append(task["task_id"])
                seen_by_phase[(phase["now"], "accepted")] += 1
                await asyncio.sleep(0.02)

        clients = [asyncio.create_task(client(i)) for i in range(6)]
        await asyncio.sleep(1.0)
        phase["now"] = "down"
        await asyncio.to_thread(postgres_server.stop)
        await asyncio.sleep(2.0)
        phase["now"] = "restarted"
        await asyncio.to_thread(postgres_server.start)
        await asyncio.to_thread(postgres_server.wait_until_up)
        deadline = time.monotonic() + 30
        while seen_by_phase[("restarted", "accepted")] < 6 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        phase["now"] = "done"
        await asyncio.gather(*clients)
        # Work whose completion fell in the outage is left with its lease; it runs out and
        # the sweep finishes it (bounded rounds).
        for _ in range(12):
            stored = await asyncio.to_thread(lambda: [check.get(task_id) for task_id in accepted])
            if all(task and task["status"] == "completed" for task in stored):
                break
            await asyncio.sleep(LEASE_S / 2)
            await runner.adopt_orphans_once()
        return accepted, refused, seen_by_phase, stored

    accepted, refused, seen_by_phase, stored = asyncio.run(scenario())
    assert seen_by_phase[("before", "accepted")] > 0
    assert seen_by_phase[("down", "503")] > 0, seen_by_phase  # the outage was seen
    assert seen_by_phase[("restarted", "accepted")] >= 6, seen_by_phase  # and recovered
    assert all(error.retry_after_s == 5 for error in refused)
    assert all("task store is unavailable" in str(error) for error in refused)
    assert all(task is not None for task in stored), "an accepted task was lost"
    assert [task["status"] for task in stored] == ["completed"] * len(accepted)
