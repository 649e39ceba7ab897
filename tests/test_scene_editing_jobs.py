"""Edit jobs (serve_app/edit_jobs.py) on a real task store, both backends, without Ray:
accepted before they run, run under a lease, adopted when their worker dies, and concurrent
edits through two runners (two ingress replicas) each landing once.

The store is the real TaskStore (SQLite behind a handle-shaped adapter, as the TaskStore
deployment is reached; PostgreSQL through each runner's own pool). The model is a stand-in
that answers once `release` is set: "unavailable", so the real fallback writes every scene,
and an edit stays "running" exactly as long as a test needs.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from fastapi.exceptions import HTTPException
from pydantic import SecretStr

from deployments.storyboard.fallback import fallback_script_json
from deployments.storyboard.models import ScriptRequest
from serve_app.config import Settings
from serve_app.edit_jobs import EditRunner
from serve_app.errors import FieldError
from serve_app.pipeline import ModelDown
from serve_app.store.target import PostgresStore
from serve_app.store_client import StoreClient
from tests.test_task_runner import LocalHandle

LEASE_S = 5.0  # the shortest the settings allow
REQUEST = ScriptRequest(prompt="Street basketball at sunset", num_scenes=5, duration_s=30)


class HeldModel:
    """The pipeline's model side: each reply waits for `release`, then the model is
    unavailable (so the fallback writes the scene). Counts the calls and the cancelled ones."""

    def __init__(self):
        self.settings = Settings()
        self.generation_timeout_s = 30.0
        self.release = asyncio.Event()
        self.asked = 0
        self.cancelled = 0

    async def model_reply(self, messages, json_schema, model=None):
        self.asked += 1
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        raise ModelDown("model_unavailable: a test stand-in")


def store_target(store_database):
    if store_database.backend == "postgresql":
        password = SecretStr(store_database.password)
        return PostgresStore(store_database.url, password, None, 4)
    return LocalHandle(store_database.open())


def make_runner(store_database, model: HeldModel, model_check=None) -> EditRunner:
    client = StoreClient(store_target(store_database), 5)
    return EditRunner(client, model, Settings(task_lease_s=LEASE_S), model_check)


def completed_task(store_database, owner: str | None = "alice") -> dict:
    store = store_database.open()
    outcome = {"script": fallback_script_json(REQUEST), "source": "fallback"}
    return store.create_completed(REQUEST.model_dump(mode="json"), "w", outcome, owner=owner)


async def until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def regenerate(number: int, instruction: str | None = None) -> dict:
    return {"scene_number": number, "instruction": instruction}


def test_an_edit_is_accepted_running_and_its_revision_stored_when_done(store_database):
    task = completed_task(store_database)

    async def scenario():
        model = HeldModel()
        runner = make_runner(store_database, model)
        edit = await runner.submit(
            task["task_id"], "alice", "alice", "regenerate", regenerate(2), None
        )
        await until(lambda: model.asked, 5)
        seen = await runner.get(task["task_id"], edit["edit_id"], "alice")
        model.release.set()
        done = await runner.wait(edit, 30)
        return edit, seen, done

    edit, seen, done = asyncio.run(scenario())
    assert edit["status"] == seen["status"] == "running" and seen["revision"] is None
    assert done["status"] == "completed" and done["revision"] == 2
    assert done["source"] == "fallback" and done["note"].startswith("scene 2 regenerated")
    latest = store_database.open().get(task["task_id"])
    before, after = task["result"]["scenes"], latest["result"]["scenes"]
    assert latest["revision"] == 2 and after[1]["description"] != before[1]["description"]
    assert [after[i] for i in (0, 2, 3, 4)] == [before[i] for i in (0, 2, 3, 4)]


def test_an_edit_whose_worker_died_is_adopted_and_stored_once(store_database):
    """Runner A accepts the edit and dies mid-model-call (its work stops, its row stays
    running); once the lease has run out runner B adopts the edit and stores its revision."""
    task = completed_task(store_database)

    async def scenario():
        dying, model_a = None, HeldModel()
        dying = make_runner(store_database, model_a)
        edit = await dying.submit(
            task["task_id"], "alice", "alice", "insert", {"position": 1}, None
        )
        await until(lambda: model_a.asked, 5)
        dying._stop(edit["edit_id"])  # as the replica's death: no failure written
        await until(lambda: dying.unfinished == 0, 5)
        store_database.execute(
            "UPDATE edits SET lease_until = lease_until - :lease WHERE edit_id = :id",
            lease=LEASE_S + 1,
            id=edit["edit_id"],
        )
        model_b = HeldModel()
        model_b.release.set()
        adopter = make_runner(store_database, model_b)
        adopted = await adopter.adopt_orphans_once()
        done = await adopter.wait(edit, 30)
        again = await adopter.adopt_orphans_once()
        return edit, adopted, done, again, model_a, model_b

    edit, adopted, done, again, model_a, model_b = asyncio.run(scenario())
    assert adopted == [edit["edit_id"]] and again == []
    assert model_a.cancelled == 1 and model_b.asked == 1
    assert done["status"] == "completed" and done["attempts"] == 2 and done["revision"] == 2
    store = store_database.open()
    assert [r["revision"] for r in store.list_revisions(task["task_id"])] == [1, 2]
    scenes = store.get(task["task_id"])["result"]["scenes"]
    assert len(scenes) == 6 and scenes[1:] == [
        {**s, "scene_number": s["scene_number"] + 1} for s in task["result"]["scenes"]
    ]


def test_concurrent_edits_through_two_runners_all_land_once(store_database):
    """Five regenerations of different scenes, accepted by two runners (two ingress replicas,
    each with its own store connection), all reading revision 1 and finishing at once: each
    is made again on the newer script when another came first, so all five land, revisions
    2..6, every scene rewritten."""
    task = completed_task(store_database)

    async def scenario():
        model = HeldModel()
        runners = [make_runner(store_database, model), make_runner(store_database, model)]
        edits = [
            await runners[n % 2].submit(
                task["task_id"], "alice", "alice", "regenerate", regenerate(n), None
            )
            for n in range(1, 6)
        ]
        await until(lambda: model.asked == 5, 10)
        model.release.set()
        return [await runners[i % 2].wait(edit, 60) for i, edit in enumerate(edits)]

    done = asyncio.run(scenario())
    assert [d["status"] for d in done] == ["completed"] * 5
    assert sorted(d["revision"] for d in done) == [2, 3, 4, 5, 6]
    latest = store_database.open().get(task["task_id"])
    before = task["result"]["scenes"]
    after = latest["result"]["scenes"]
    assert latest["revision"] == 6
    assert all(a["description"] != b["description"] for a, b in zip(after, before, strict=True))


def test_an_edit_past_its_if_match_fails_with_the_409_a_waiting_client_gets(store_database):
    task = completed_task(store_database)

    async def scenario():
        model = HeldModel()
        runner = make_runner(store_database, model)
        edit = await runner.submit(
            task["task_id"], "alice", "alice", "regenerate", regenerate(3), 1
        )
        await until(lambda: model.asked, 5)
        store = store_database.open()
        store.add_revision(task["task_id"], None, task["result"], "edit", "meanwhile", 1)
        model.release.set()
        return await runner.wait(edit, 30)

    failed = asyncio.run(scenario())
    assert failed["status"] == "failed" and failed["error_status"] == 409
    assert "revision 2, not 1" in failed["error"]
    assert store_database.open().get(task["task_id"])["revision"] == 2


@pytest.mark.parametrize(
    ("kind", "params", "if_match", "status"),
    [
        ("regenerate", regenerate(6), None, 404),  # the script has 5 scenes
        ("regenerate", regenerate(1), 2, 409),  # the task is at revision 1
        ("insert", {"position": 7}, None, 422),
        ("refine", {"instruction": "funnier"}, None, 503),  # no model
    ],
)
def test_what_cannot_be_done_is_refused_at_once_and_nothing_is_stored(
    store_database, kind, params, if_match, status
):
    task = completed_task(store_database)

    async def no_model() -> str:
        return "model_unavailable: no weights"

    async def scenario():
        model = HeldModel()
        runner = make_runner(store_database, model, no_model)
        try:
            await runner.submit(task["task_id"], "alice", "alice", kind, params, if_match)
        except FieldError as error:
            return 422, error.field, model.asked
        except HTTPException as error:
            return error.status_code, error.detail, model.asked
        return None, None, model.asked

    code, detail, asked = asyncio.run(scenario())
    assert code == status and asked == 0
    if code == 422:
        assert detail == "body.position"
    assert store_database.open().list_edits(task["task_id"]) == []


def test_another_owner_and_an_unfinished_task_are_refused(store_database):
    task = completed_task(store_database)
    running = store_database.open().create_running("r1", REQUEST.model_dump(), "w", 30, [], "alice")

    async def scenario():
        runner = make_runner(store_database, HeldModel())
        outcomes = []
        for task_id, owner in ((task["task_id"], "bob"), (running["task_id"], "alice")):
            try:
                await runner.submit(task_id, owner, owner, "regenerate", regenerate(1), None)
            except HTTPException as error:
                outcomes.append((error.status_code, error.detail))
        return outcomes

    (foreign, foreign_message), (unfinished, message) = asyncio.run(scenario())
    assert foreign == 404 and "no task" in foreign_message
    assert unfinished == 409 and "running" in message


def test_an_idempotency_key_gives_the_first_edit_and_refuses_another_body(store_database):
    task = completed_task(store_database)

    async def scenario():
        model = HeldModel()
        model.release.set()
        runner = make_runner(store_database, model)
        first = await runner.submit(
            task["task_id"], "alice", "alice", "regenerate", regenerate(2), None, "key-1"
        )
        await runner.wait(first, 30)
        again = await runner.submit(
            task["task_id"], "alice", "alice", "regenerate", regenerate(2), None, "key-1"
        )
        try:
            await runner.submit(
                task["task_id"], "alice", "alice", "regenerate", regenerate(3), None, "key-1"
            )
        except FieldError as error:
            refused = error.field
        return first, again, refused, model.asked

    first, again, refused, asked = asyncio.run(scenario())
    assert again["replayed"] and again["edit_id"] == first["edit_id"]
    assert again["status"] == "completed" and again["revision"] == 2
    assert refused == "header.idempotency-key" and asked == 1
    assert len(store_database.open().list_edits(task["task_id"])) == 1
