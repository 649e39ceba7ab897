"""The real Serve app (CPU profile) with a tiny random-weight model, over real HTTP."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from deployments.storyboard.models import VideoScript
from serve_app.protocol import TaskResponse

pytestmark = pytest.mark.integration

FOREST = "制作一段关于森林探险的短视频"


@pytest.fixture(scope="module")
def app(deploy_app, tiny_model_dir):
    # A long batch wait makes concurrent requests meet in one batch on a slow CI machine.
    return deploy_app(model_path=str(tiny_model_dir), batch_wait_timeout_s=0.2, max_new_tokens=48)


@pytest.fixture(scope="module")
def client(app):
    with app.client() as client:
        yield client


def create(client, body, **params) -> httpx.Response:
    return client.post("/api/tasks/", json=body, params=params)


def burst(app, count: int) -> list[httpx.Response]:
    """`count` different ?wait=true tasks sent at once."""

    async def send_all():
        async with httpx.AsyncClient(base_url=app.url, timeout=300) as session:
            bodies = [{"prompt": f"{FOREST} {i}"} for i in range(count)]
            return await asyncio.gather(
                *(session.post("/api/tasks/", json=b, params={"wait": "true"}) for b in bodies)
            )

    return asyncio.run(send_all())


def test_health_reports_the_loaded_model(client, tiny_model_dir):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["llm_loaded"] is True
    assert health["device"] == "cpu" and health["model_path"] == str(tiny_model_dir)


def test_model_status_reports_engine_and_batching(client):
    status = client.get("/api/model/status").json()
    assert status["loaded"] and status["precision"] == "fp32" and status["parameters"] > 0
    assert status["batching"] == {"max_batch_size": 8, "batch_wait_timeout_s": 0.2}
    assert status["host_rss_mb"] > 0 and status["gpu"] is None
    assert set(status["scripts"]) == {"llm", "llm_repaired", "fallback", "parse_failures"}


def test_async_task_is_accepted_then_completes(client):
    response = create(client, {"prompt": FOREST})
    assert response.status_code == 202
    task = TaskResponse.model_validate(response.json())
    # Stored already running under the accepting replica's lease, in one call.
    assert task.status == "running" and task.attempts == 1 and task.started_at is not None
    assert response.headers["location"] == f"/api/tasks/{task.task_id}"
    for _ in range(600):
        task = TaskResponse.model_validate(client.get(response.headers["location"]).json())
        if task.status == "completed":
            break
        time.sleep(0.1)
    assert task.status == "completed" and task.progress == 100
    assert task.result is not None and task.result.language == "zh"


def test_wait_returns_a_finished_valid_script(client):
    response = create(client, {"prompt": FOREST, "num_scenes": 4, "duration_s": 20}, wait="true")
    assert response.status_code == 200
    task = TaskResponse.model_validate(response.json())
    script = VideoScript.model_validate(task.result.model_dump())
    assert task.status == "completed" and task.source in ("llm", "llm_repaired", "fallback")
    # A random-weight model writes nonsense: the parser rejects it and the fallback answers.
    assert task.source == "fallback" and task.fallback_reason.startswith("parse_failed")
    assert len(script.scenes) == 4 and script.total_duration == pytest.approx(20)
    assert task.timings.total_ms > 0 and task.timings.generation_ms > 0
    assert task.attempts == 1


def test_get_list_and_delete(client):
    ids = [create(client, {"prompt": f"city night walk {i}"}).json()["task_id"] for i in range(3)]
    listing = client.get("/api/tasks/", params={"limit": 2}).json()
    assert listing["total"] >= 3 and len(listing["items"]) == 2 and listing["limit"] == 2
    assert client.delete(f"/api/tasks/{ids[0]}").status_code == 204
    assert client.get(f"/api/tasks/{ids[0]}").status_code == 404
    assert client.delete(f"/api/tasks/{ids[0]}").status_code == 404
    pending = client.get("/api/tasks/", params={"status": "failed"}).json()
    assert all(item["status"] == "failed" for item in pending["items"])


def test_unknown_task_is_a_404_in_the_error_shape(client):
    response = client.get("/api/tasks/does-not-exist")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": ""}, "body.prompt"),
        ({"prompt": "   "}, "body.prompt"),
        ({"prompt": "x" * 2001}, "body.prompt"),
        ({"prompt": 7}, "body.prompt"),
        ({"prompt": "ok", "language": "it"}, "body.language"),
        ({"prompt": "ok", "duration_s": 1000}, "body.duration_s"),
        ({"prompt": "ok", "num_scenes": 0}, "body.num_scenes"),
        ({"prompt": "ok", "unexpected": True}, "body.unexpected"),
        ({}, "body.prompt"),
    ],
)
def test_bad_input_is_a_422_naming_the_field_and_stores_nothing(client, body, field):
    before = client.get("/api/tasks/").json()["total"]
    response = create(client, body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    assert field in [f["field"] for f in error["fields"]]
    assert client.get("/api/tasks/").json()["total"] == before


def test_malformed_json_is_a_422(client):
    response = client.post(
        "/api/tasks/", content=b'{"prompt": "x",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "malformed JSON" in response.json()["error"]["fields"][0]["problem"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/tasks/", {"limit": 0}),
        ("/api/tasks/", {"skip": -1}),
        ("/api/tasks/", {"status": "x"}),
    ],
)
def test_bad_query_parameters_are_422(client, path, params):
    response = client.get(path, params=params)
    assert response.status_code == 422 and response.json()["error"]["fields"]


def test_openapi_documents_the_contract(client):
    spec = client.get("/openapi.json").json()
    assert {"/health", "/api/model/status", "/api/tasks/", "/api/tasks/{task_id}"} <= set(
        spec["paths"]
    )
    assert "example" in spec["components"]["schemas"]["VideoScript"]
    assert client.get("/docs").status_code == 200


def test_concurrent_requests_are_batched(app, client):
    before = client.get("/api/model/status").json()["counters"]
    responses = burst(app, 16)
    assert all(r.status_code == 200 for r in responses)
    after = client.get("/api/model/status").json()["counters"]
    requests = after["requests"] - before["requests"]
    batches = after["batches"] - before["batches"]
    assert requests >= 16
    assert requests / batches > 1, f"{requests} requests ran in {batches} batches"
    assert after["max_batch_size_seen"] > 1


def test_unload_serves_the_fallback_and_load_brings_the_model_back(client):
    unloaded = client.post("/api/model/unload").json()
    assert unloaded["loaded"] is False and unloaded["reason"] == "unloaded"
    assert client.get("/health").json()["status"] == "degraded"
    task = create(client, {"prompt": "a product video for a new phone"}, wait="true").json()
    assert task["source"] == "fallback" and task["fallback_reason"].startswith("model_unavailable")
    assert task["result"]["language"] == "en"
    assert client.post("/api/model/load").json()["loaded"] is True
    assert client.get("/health").json()["llm_loaded"] is True


def test_the_continuous_engine_serves_through_serve(app, deploy_app):
    """Last in this module: it replaces the module's app (same cluster, same port) with one on
    the continuous engine, so no test after it may rely on the static one."""
    deploy_app(**{**app.args, "engine": "continuous", "constrained_decoding": False})
    with app.client() as client:
        deadline = time.monotonic() + 60
        while client.get("/api/model/status").json().get("engine") != "continuous":
            assert time.monotonic() < deadline, "the continuous replica never came up"
            time.sleep(0.5)
        tasks = [response.json() for response in burst(app, 8)]
        # Unconstrained, the random model's replies never parse: each task asked the model twice
        # (reply, self-repair) before the fallback wrote it.
        assert all(t["fallback_reason"].startswith("parse_failed") for t in tasks), tasks[0]
        status = client.get("/api/model/status").json()
        assert status["counters"]["requests"] >= 16 and status["counters"]["in_flight"] == 0
        assert client.post("/api/model/unload").json()["loaded"] is False
        assert client.post("/api/model/load").json()["loaded"] is True
