"""Overload, deadlines, access control and limits on the real Serve app over real HTTP.

One app for the module: API keys on, at most 4 unfinished tasks per ingress replica, and a
1 s generation deadline against a model that needs seconds per script (random weights,
EOS ignored), so every LLM call times out and tasks stay unfinished long enough to fill up.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from serve_app.protocol import ErrorResponse, TaskResponse

pytestmark = pytest.mark.integration

USER_KEY = "user-key-for-tests"
ADMIN_KEY = "admin-key-for-tests"
USER = {"Authorization": f"Bearer {USER_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
CAPACITY = 4
BURST = 10 * CAPACITY


@pytest.fixture(scope="module")
def app(deploy_app, tiny_model_dir):
    return deploy_app(
        model_path=str(tiny_model_dir),
        max_new_tokens=768,
        bench_ignore_eos=True,
        generation_timeout_s=1.0,
        max_unfinished_tasks=CAPACITY,
        overload_retry_after_s=2,
        max_prompt_tokens=100,
        api_keys=USER_KEY,
        admin_api_keys=ADMIN_KEY,
    )


@pytest.fixture(scope="module")
def client(app):
    with app.client() as client:
        yield client


def error_of(response: httpx.Response) -> dict:
    return ErrorResponse.model_validate(response.json()).error.model_dump()


def wait_until_finished(client: httpx.Client, task_ids: list[str], timeout_s: float = 120):
    """The final tasks, polled until none is pending or running (bounded in time)."""
    deadline = time.monotonic() + timeout_s
    while True:
        tasks = [client.get(f"/api/tasks/{i}", headers=USER).json() for i in task_ids]
        unfinished = [t["task_id"] for t in tasks if t["status"] in ("pending", "running")]
        if not unfinished or time.monotonic() > deadline:
            return tasks
        time.sleep(0.5)


def stored_task_count(client: httpx.Client) -> int:
    return client.get("/api/tasks/", headers=USER).json()["total"]


def test_health_docs_and_openapi_stay_open(client):
    assert client.get("/health").status_code == 200
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/tasks/"),
        ("POST", "/api/tasks/"),
        ("GET", "/api/tasks/some-id"),
        ("DELETE", "/api/tasks/some-id"),
        ("GET", "/api/model/status"),
        ("POST", "/api/model/unload"),
    ],
)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "x"}])
def test_api_routes_refuse_a_missing_or_wrong_key(client, method, path, headers):
    response = client.request(method, path, headers=headers, json={"prompt": "森林"})
    assert response.status_code == 401
    assert error_of(response)["type"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


def test_model_admin_routes_need_an_admin_key(client):
    refused = client.post("/api/model/unload", headers=USER)
    assert refused.status_code == 403 and error_of(refused)["type"] == "forbidden"
    assert client.get("/health").json()["llm_loaded"] is True
    assert client.post("/api/model/load", headers=ADMIN).json()["loaded"] is True
    assert client.get("/api/model/status", headers=ADMIN).status_code == 200


def test_request_id_is_returned_and_carried_in_errors(client):
    response = client.get("/api/tasks/unknown", headers={**USER, "X-Request-ID": "trace-42"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "trace-42"
    assert response.json()["request_id"] == "trace-42"
    generated = client.get("/api/tasks/unknown", headers=USER)
    assert generated.json()["request_id"] == generated.headers["x-request-id"]


def test_an_insane_request_id_is_a_400_naming_the_header(client):
    response = client.get("/api/tasks/", headers={**USER, "X-Request-ID": "x" * 200})
    assert response.status_code == 400
    assert error_of(response)["fields"][0]["field"] == "header.x-request-id"


def test_an_oversized_body_is_a_413_and_stores_nothing(client):
    before = stored_task_count(client)
    huge = b'{"prompt": "' + b"x" * 70_000 + b'"}'
    response = client.post(
        "/api/tasks/", content=huge, headers={**USER, "Content-Type": "application/json"}
    )
    assert response.status_code == 413 and error_of(response)["type"] == "payload_too_large"
    assert stored_task_count(client) == before


def test_a_prompt_over_the_token_limit_is_a_422_naming_it(client):
    before = stored_task_count(client)
    response = client.post("/api/tasks/", json={"prompt": "森" * 150}, headers=USER)
    assert response.status_code == 422
    [field] = error_of(response)["fields"]
    assert field["field"] == "body.prompt" and "tokens" in field["problem"]
    assert stored_task_count(client) == before


def test_the_generation_deadline_completes_the_task_with_the_fallback(client):
    response = client.post(
        "/api/tasks/",
        json={"prompt": "制作一段关于森林探险的短视频"},
        params={"wait": "true"},
        headers=USER,
    )
    assert response.status_code == 200
    task = TaskResponse.model_validate(response.json())
    assert task.status == "completed" and task.source == "fallback"
    assert task.fallback_reason.startswith("timeout")
    assert task.result.language == "zh"


def test_a_burst_of_ten_times_capacity_is_shed_with_503_and_loses_nothing(app, client):
    before = stored_task_count(client)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=app.url, timeout=60, headers=USER) as session:
            bodies = [{"prompt": f"city night walk {i}"} for i in range(BURST)]
            return await asyncio.gather(*(session.post("/api/tasks/", json=b) for b in bodies))

    responses = asyncio.run(burst())
    codes = sorted({r.status_code for r in responses})
    assert set(codes) <= {202, 503}, codes
    shed = [r for r in responses if r.status_code == 503]
    accepted = [r.json()["task_id"] for r in responses if r.status_code == 202]
    assert len(shed) >= BURST // 2 and len(accepted) >= CAPACITY
    assert all(r.headers["retry-after"] == "2" for r in shed)
    assert all(error_of(r)["type"] == "service_unavailable" for r in shed)
    assert stored_task_count(client) == before + len(accepted)
    finished = wait_until_finished(client, accepted)
    assert [t["status"] for t in finished] == ["completed"] * len(accepted)
