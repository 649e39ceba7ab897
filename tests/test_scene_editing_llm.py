"""Scene editing through the LLM path, over real HTTP, with the tiny random-weight model.

A random model writes valid JSON only when constrained decoding holds it to the schema, so a
revision recorded as `llm` proves the scene came from the model, through the one-scene schema.
"""

from __future__ import annotations

import httpx
import pytest

from serve_app.protocol import RevisionList, TaskResponse

pytestmark = pytest.mark.integration

STYLE = "watercolor illustration"
BODY = {
    "prompt": "Street basketball at sunset",
    "num_scenes": 4,
    "duration_s": 24,
    "visual_style": STYLE,
}
WAIT = {"wait": "true"}  # edit jobs answer 200 with the task once their revision is stored


@pytest.fixture(scope="module")
def app(deploy_app, tiny_model_dir):
    return deploy_app(model_path=str(tiny_model_dir), max_new_tokens=256, cache_enabled=False)


@pytest.fixture(scope="module")
def client(app):
    with app.client(timeout=300) as client:
        yield client


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return TaskResponse.model_validate(response.json()).model_dump(mode="json")


def model_requests(client) -> int:
    return client.get("/api/model/status").json()["counters"]["requests"]


def test_regenerate_insert_and_refine_go_through_the_model_and_record_it(client):
    task = ok(client.post("/api/tasks/", json=BODY, params={"wait": "true"}))
    task_id, first_source = task["task_id"], task["source"]
    assert task["revision"] == 1 and task["revision_source"] == first_source
    path = f"/api/tasks/{task_id}"

    asked = model_requests(client)
    regenerated = ok(client.post(f"{path}/scenes/2/regenerate", params=WAIT))
    assert model_requests(client) == asked + 1
    assert regenerated["revision"] == 2 and regenerated["revision_source"] == "llm"
    assert regenerated["revision_note"] == "scene 2 regenerated"
    before, after = task["result"]["scenes"], regenerated["result"]["scenes"]
    assert after[1]["duration"] == before[1]["duration"]  # no instruction: same length
    assert STYLE in after[1]["visual_prompt"]  # the look every scene carries
    assert [after[i] for i in (0, 2, 3)] == [before[i] for i in (0, 2, 3)]
    assert regenerated["result"]["total_duration"] == task["result"]["total_duration"]

    instructed = ok(
        client.post(f"{path}/scenes/3/regenerate", json={"instruction": "at night"}, params=WAIT)
    )
    assert instructed["revision_source"] == "llm" and "at night" in instructed["revision_note"]
    scenes = instructed["result"]["scenes"]
    assert [scenes[i] for i in (0, 1, 3)] == [after[i] for i in (0, 1, 3)]
    assert instructed["result"]["total_duration"] == sum(s["duration"] for s in scenes)

    inserted = ok(client.post(f"{path}/scenes", json={"position": 1}, params=WAIT))
    assert inserted["revision_source"] == "llm" and len(inserted["result"]["scenes"]) == 5
    assert inserted["result"]["scenes"][1:] == [
        {**s, "scene_number": s["scene_number"] + 1} for s in scenes
    ]

    refined = ok(client.post(f"{path}/refine", json={"instruction": "more suspense"}, params=WAIT))
    assert refined["revision"] == 5 and refined["revision_source"] == "llm"
    assert refined["revision_note"] == "refined: more suspense"

    listed = RevisionList.model_validate(client.get(f"{path}/revisions").json()).items
    assert [(r.revision, r.source) for r in listed] == [
        (1, first_source),
        (2, "llm"),
        (3, "llm"),
        (4, "llm"),
        (5, "llm"),
    ]
    assert ok(client.get(path, params={"revision": 1}))["result"] == task["result"]
    client.delete(path)


def test_without_constrained_decoding_the_random_model_fails_and_the_fallback_answers(
    app, deploy_app
):
    """The counterpart of the test above: the same model unconstrained writes no usable scene,
    so the revision is the fallback's, with the reason in its note."""
    unconstrained = deploy_app(**{**app.args, "constrained_decoding": False})
    with unconstrained.client(timeout=300) as client:
        task = ok(client.post("/api/tasks/", json=BODY, params={"wait": "true"}))
        path = f"/api/tasks/{task['task_id']}"
        regenerated = ok(client.post(f"{path}/scenes/2/regenerate", params=WAIT))
        assert regenerated["revision_source"] == "fallback"
        assert "(fallback: parse_failed:" in regenerated["revision_note"]
        before, after = task["result"]["scenes"], regenerated["result"]["scenes"]
        assert after[1]["description"] != before[1]["description"]
        assert [after[i] for i in (0, 2, 3)] == [before[i] for i in (0, 2, 3)]

        # A refine has no fallback: the job fails, and ?wait=true answers its 503.
        refined = client.post(f"{path}/refine", json={"instruction": "calmer"}, params=WAIT)
        assert refined.status_code == 503, refined.text
        assert "not a valid storyboard" in refined.json()["error"]["message"]
        failed = client.get(refined.headers["Location"]).json()
        assert (failed["kind"], failed["status"], failed["error_status"]) == (
            "refine",
            "failed",
            503,
        )
        assert ok(client.get(path))["revision"] == 2  # nothing changed
        client.delete(path)
