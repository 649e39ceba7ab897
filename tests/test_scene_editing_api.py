"""Scene editing with revisions over real HTTP, without a model: every script and every
regenerated scene comes from the fallback (issue 13, item 4).

One app for the module: no weights at model_path, two user keys and an admin key.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid

import httpx
import pytest

from serve_app.protocol import EditList, EditResponse, ErrorResponse, RevisionList, TaskResponse

pytestmark = pytest.mark.integration

ALICE = {"Authorization": "Bearer alice-key-for-tests"}
BOB = {"Authorization": "Bearer bob-key-for-tests"}
ADMIN = {"Authorization": "Bearer admin-key-for-tests"}
BODY = {"prompt": "Street basketball at sunset", "num_scenes": 5, "duration_s": 30}
WAIT = {"wait": "true"}  # the edit jobs (regenerate, a written insert, refine) answer 200 then


@pytest.fixture(scope="module")
def app(deploy_app, tmp_path_factory):
    missing = tmp_path_factory.mktemp("no-model") / "absent"
    return deploy_app(
        model_path=str(missing),
        model_recheck_s=600,
        api_keys="alice-key-for-tests,bob-key-for-tests",
        admin_api_keys="admin-key-for-tests",
    )


@pytest.fixture(scope="module")
def client(app):
    with app.client() as client:
        yield client


@pytest.fixture
def task(client) -> dict:
    """A completed task of Alice's (revision 1, by the fallback), deleted afterwards."""
    created = client.post("/api/tasks/", json=BODY, params={"wait": "true"}, headers=ALICE)
    assert created.status_code == 200
    task = created.json()
    yield task
    client.delete(f"/api/tasks/{task['task_id']}", headers=ALICE)


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return TaskResponse.model_validate(response.json()).model_dump(mode="json")


def error_of(response: httpx.Response) -> dict:
    return ErrorResponse.model_validate(response.json()).error.model_dump()


def scenes_but(task: dict, number: int) -> list[dict]:
    return [s for s in task["result"]["scenes"] if s["scene_number"] != number]


def revisions(client, task_id: str, headers=ALICE) -> list[tuple]:
    response = client.get(f"/api/tasks/{task_id}/revisions", headers=headers)
    assert response.status_code == 200, response.text
    listed = RevisionList.model_validate(response.json()).items
    return [(item.revision, item.source) for item in listed]


def test_a_new_task_is_revision_one_of_the_fallback(client, task):
    assert task["revision"] == 1 and task["revision_source"] == "fallback"
    assert revisions(client, task["task_id"]) == [(1, "fallback")]
    again = ok(client.get(f"/api/tasks/{task['task_id']}", params={"revision": 1}, headers=ALICE))
    assert again["result"] == task["result"]


def test_patch_regenerate_and_delete_each_make_a_revision_and_leave_the_rest(client, task):
    task_id = task["task_id"]
    path = f"/api/tasks/{task_id}/scenes"
    patched = ok(
        client.patch(f"{path}/2", json={"narration": "A new line.", "duration": 9}, headers=ALICE)
    )
    assert patched["revision"] == 2 and patched["revision_source"] == "edit"
    assert patched["result"]["scenes"][1]["narration"] == "A new line."
    assert (
        patched["result"]["scenes"][1]["description"] == task["result"]["scenes"][1]["description"]
    )
    assert scenes_but(patched, 2) == scenes_but(task, 2)
    old_total, old_second = task["result"]["total_duration"], task["result"]["scenes"][1]
    assert patched["result"]["total_duration"] == old_total - old_second["duration"] + 9

    regenerated = ok(client.post(f"{path}/3/regenerate", params=WAIT, headers=ALICE))
    assert regenerated["revision"] == 3 and regenerated["revision_source"] == "fallback"
    new_third, old_third = regenerated["result"]["scenes"][2], patched["result"]["scenes"][2]
    assert new_third["description"] != old_third["description"]
    assert new_third["duration"] == old_third["duration"]
    assert scenes_but(regenerated, 3) == scenes_but(patched, 3)

    deleted = ok(client.delete(f"{path}/1", headers=ALICE))
    assert deleted["revision"] == 4 and deleted["revision_source"] == "edit"
    assert [s["scene_number"] for s in deleted["result"]["scenes"]] == [1, 2, 3, 4]
    moved = [{**s, "scene_number": s["scene_number"] - 1} for s in scenes_but(regenerated, 1)]
    assert deleted["result"]["scenes"] == moved

    assert revisions(client, task_id) == [
        (1, "fallback"),
        (2, "edit"),
        (3, "fallback"),
        (4, "edit"),
    ]
    first = ok(client.get(f"/api/tasks/{task_id}", params={"revision": 1}, headers=ALICE))
    assert first["result"] == task["result"] and first["revision"] == 1
    assert ok(client.get(f"/api/tasks/{task_id}", headers=ALICE))["result"] == deleted["result"]
    assert (
        ok(client.get(f"/api/tasks/{task_id}", params={"revision": 2}, headers=ALICE))["result"]
        == patched["result"]
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"duration": 0}, "body.duration"),
        ({"camera": "dolly zoom"}, "body.camera"),
        ({"scene_number": 4}, "body.scene_number"),
        ({"mood": "dark"}, "body.mood"),
        ({"characters": ["Nobody"]}, "body.characters"),
        ({}, "body"),
    ],
)
def test_an_invalid_patch_is_a_422_naming_the_field_and_changes_nothing(
    client, task, changes, field
):
    response = client.patch(f"/api/tasks/{task['task_id']}/scenes/2", json=changes, headers=ALICE)
    assert response.status_code == 422, response.text
    assert [f["field"] for f in error_of(response)["fields"]] == [field]
    assert ok(client.get(f"/api/tasks/{task['task_id']}", headers=ALICE)) == task


def test_inserting_a_given_and_a_written_scene(client, task):
    path = f"/api/tasks/{task['task_id']}/scenes"
    given = {**task["result"]["scenes"][0], "description": "An inserted shot", "duration": 4}
    inserted = ok(client.post(path, json={"position": 2, "scene": given}, headers=ALICE))
    assert inserted["revision"] == 2 and inserted["revision_source"] == "edit"
    scenes = inserted["result"]["scenes"]
    assert len(scenes) == 6 and scenes[1]["description"] == "An inserted shot"
    assert scenes[0] == task["result"]["scenes"][0]
    assert [s["description"] for s in scenes[2:]] == [
        s["description"] for s in task["result"]["scenes"][1:]
    ]
    assert inserted["result"]["total_duration"] == task["result"]["total_duration"] + 4
    written = ok(client.post(path, json={}, params=WAIT, headers=ALICE))
    assert written["revision_source"] == "fallback" and len(written["result"]["scenes"]) == 7
    assert written["result"]["scenes"][:6] == scenes
    shown = {s["description"] for s in scenes}
    assert written["result"]["scenes"][6]["description"] not in shown
    bad = client.post(path, json={"position": 9}, headers=ALICE)
    assert bad.status_code == 422 and error_of(bad)["fields"][0]["field"] == "body.position"


def test_the_last_scene_cannot_be_deleted(client):
    body = {"prompt": "Street basketball at sunset", "num_scenes": 1, "duration_s": 10}
    task = ok(client.post("/api/tasks/", json=body, params={"wait": "true"}, headers=ALICE))
    response = client.delete(f"/api/tasks/{task['task_id']}/scenes/1", headers=ALICE)
    assert response.status_code == 409 and "last one" in error_of(response)["message"]
    missing = client.delete(f"/api/tasks/{task['task_id']}/scenes/2", headers=ALICE)
    assert missing.status_code == 404 and "no scene 2" in error_of(missing)["message"]
    client.delete(f"/api/tasks/{task['task_id']}", headers=ALICE)


def test_refine_without_a_model_is_a_503_and_changes_nothing(client, task):
    response = client.post(
        f"/api/tasks/{task['task_id']}/refine", json={"instruction": "funnier"}, headers=ALICE
    )
    assert response.status_code == 503
    assert "refine needs the model" in error_of(response)["message"]
    assert revisions(client, task["task_id"]) == [(1, "fallback")]
    listed = client.get(f"/api/tasks/{task['task_id']}/edits", headers=ALICE)
    assert listed.status_code == 200 and listed.json()["items"] == []  # nothing accepted


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/scenes/1", {"narration": "mine now"}),
        ("DELETE", "/scenes/1", None),
        ("POST", "/scenes/1/regenerate", None),
        ("POST", "/scenes", {}),
        ("POST", "/refine", {"instruction": "x"}),
        ("GET", "/revisions", None),
        ("GET", "/edits", None),
        ("GET", "?revision=1", None),
    ],
)
def test_another_keys_task_is_a_404_like_a_missing_one(client, task, method, path, body):
    task_id, missing = task["task_id"], uuid.uuid4().hex
    foreign = client.request(method, f"/api/tasks/{task_id}{path}", json=body, headers=BOB)
    absent = client.request(method, f"/api/tasks/{missing}{path}", json=body, headers=BOB)
    assert foreign.status_code == absent.status_code == 404
    assert error_of(foreign)["message"] == error_of(absent)["message"].replace(missing, task_id)
    assert revisions(client, task_id) == [(1, "fallback")]
    assert revisions(client, task_id, headers=ADMIN) == [(1, "fallback")]


def test_an_unknown_revision_is_a_404_naming_it(client, task):
    response = client.get(f"/api/tasks/{task['task_id']}", params={"revision": 7}, headers=ALICE)
    assert response.status_code == 404 and "no revision 7" in error_of(response)["message"]


def test_if_match_refuses_an_edit_from_an_older_revision(client, task):
    path = f"/api/tasks/{task['task_id']}/scenes/2"
    first = client.patch(path, json={"narration": "one"}, headers={**ALICE, "If-Match": '"1"'})
    assert ok(first)["revision"] == 2
    stale = client.patch(path, json={"narration": "two"}, headers={**ALICE, "If-Match": "1"})
    assert stale.status_code == 409 and "revision 2, not 1" in error_of(stale)["message"]
    assert revisions(client, task["task_id"]) == [(1, "fallback"), (2, "edit")]


def test_concurrent_edits_of_different_scenes_all_land(app, task):
    task_id, results = task["task_id"], []

    def edit(number: int) -> None:
        with app.client() as client:
            path = f"/api/tasks/{task_id}/scenes/{number}"
            results.append(client.patch(path, json={"narration": f"line {number}"}, headers=ALICE))

    threads = [threading.Thread(target=edit, args=(n,)) for n in range(1, 6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(ok(r)["revision"] for r in results) == [2, 3, 4, 5, 6]
    with app.client() as client:
        latest = ok(client.get(f"/api/tasks/{task_id}", headers=ALICE))
    assert [s["narration"] for s in latest["result"]["scenes"]] == [
        f"line {n}" for n in range(1, 6)
    ]


def test_a_task_that_did_not_complete_cannot_be_edited(app, client, task):
    """A failed row of Alice's, written into the store's file as a cancelled task leaves it."""
    with sqlite3.connect(app.args["task_db_path"], timeout=10) as db:
        db.execute(
            "INSERT INTO tasks (task_id, status, progress, request_json, error, created_at,"
            " owner) SELECT ?, 'failed', 100, request_json, 'cancelled: test', ?, owner"
            " FROM tasks WHERE task_id = ?",
            (failed := uuid.uuid4().hex, time.time(), task["task_id"]),
        )
    response = client.patch(f"/api/tasks/{failed}/scenes/1", json={"narration": "x"}, headers=ALICE)
    assert response.status_code == 409 and "failed" in error_of(response)["message"]
    assert client.get(f"/api/tasks/{failed}/revisions", headers=ALICE).json()["items"] == []
    client.delete(f"/api/tasks/{failed}", headers=ALICE)


@pytest.mark.parametrize(
    ("path", "body", "headers", "field"),
    [
        ("/scenes/1/regenerate", {"instruction": "\u200b\u200b"}, {}, "body.instruction"),
        ("/refine", {"instruction": "\u202e "}, {}, "body.instruction"),
        ("/refine", {}, {}, "body.instruction"),
        ("/scenes", {"scene": {"description": "no camera"}}, {}, "body.scene.duration"),
        ("/scenes/1/regenerate", None, {"If-Match": "latest"}, "header.If-Match"),
    ],
)
def test_malformed_edit_requests_are_a_422_naming_the_field(
    client, task, path, body, headers, field
):
    response = client.post(
        f"/api/tasks/{task['task_id']}{path}", json=body, headers={**ALICE, **headers}
    )
    assert response.status_code == 422, response.text
    assert [f["field"] for f in error_of(response)["fields"]] == [field]
    assert revisions(client, task["task_id"]) == [(1, "fallback")]


def poll_edit(client, location: str, headers=ALICE) -> dict:
    """The edit at `location` once finished (bounded: 120 polls, 0.25 s apart)."""
    for _ in range(120):
        response = client.get(location, headers=headers)
        assert response.status_code == 200, response.text
        edit = EditResponse.model_validate(response.json())
        if edit.status in ("completed", "failed"):
            return edit.model_dump(mode="json")
        time.sleep(0.25)
    raise AssertionError(f"{location} did not finish")


def test_regenerate_is_a_job_accepted_with_202_and_a_location_to_poll(client, task):
    task_id = task["task_id"]
    response = client.post(
        f"/api/tasks/{task_id}/scenes/4/regenerate",
        json={"instruction": "a wider view"},
        headers=ALICE,
    )
    assert response.status_code == 202, response.text
    accepted = EditResponse.model_validate(response.json())
    location = response.headers["Location"]
    assert location == f"/api/tasks/{task_id}/edits/{accepted.edit_id}"
    assert (accepted.kind, accepted.scene_number, accepted.instruction) == (
        "regenerate",
        4,
        "a wider view",
    )
    assert accepted.status == "running" and accepted.revision is None
    assert client.get(location, headers=BOB).status_code == 404  # another key's task
    done = poll_edit(client, location)
    assert done["status"] == "completed" and done["revision"] == 2
    assert done["revision_source"] == "fallback" and done["attempts"] == 1
    latest = ok(client.get(f"/api/tasks/{task_id}", headers=ALICE))
    assert latest["revision"] == 2 and latest["revision_note"] == done["revision_note"]
    assert scenes_but(latest, 4) == scenes_but(task, 4)
    listed = EditList.model_validate(
        client.get(f"/api/tasks/{task_id}/edits", headers=ALICE).json()
    )
    assert [item.edit_id for item in listed.items] == [accepted.edit_id]


def test_an_idempotency_key_replays_the_edit_and_refuses_another_one(client, task):
    path = f"/api/tasks/{task['task_id']}/scenes"
    headers = {**ALICE, "Idempotency-Key": "edit-key-1"}
    first = client.post(path, json={"position": 2}, params=WAIT, headers=headers)
    assert ok(first)["revision"] == 2 and len(ok(first)["result"]["scenes"]) == 6
    again = client.post(path, json={"position": 2}, headers=headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    replayed = EditResponse.model_validate(again.json())
    assert replayed.status == "completed" and replayed.revision == 2
    other = client.post(path, json={"position": 3}, headers=headers)
    assert other.status_code == 422
    assert [f["field"] for f in error_of(other)["fields"]] == ["header.idempotency-key"]
    assert revisions(client, task["task_id"]) == [(1, "fallback"), (2, "fallback")]


def test_a_job_from_a_stale_if_match_is_refused_at_once(client, task):
    """A regeneration sent with a stale If-Match is a 409 before anything is stored."""
    path = f"/api/tasks/{task['task_id']}/scenes"
    ok(client.patch(f"{path}/1", json={"narration": "moved on"}, headers=ALICE))
    stale = client.post(f"{path}/2/regenerate", params=WAIT, headers={**ALICE, "If-Match": '"1"'})
    assert stale.status_code == 409 and "revision 2, not 1" in error_of(stale)["message"]
    listed = client.get(f"/api/tasks/{task['task_id']}/edits", headers=ALICE).json()
    assert listed["items"] == []
