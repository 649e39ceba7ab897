"""Task events and webhooks on the real Serve app over real HTTP, with the tiny model.

One app for the module: two keys, webhooks allowed to 127.0.0.1 (a receiver in this process,
tests/test_webhooks.py's), EOS ignored so a task generates for a few seconds (400 tokens: the
tiny model's greedy reply completes two scenes and is cut in the third, which the parser
repairs), progress written every 0.2 s, streams polling every 0.1 s and pinging every second.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from standardwebhooks import Webhook

from serve_app.protocol import ErrorResponse, TaskResponse
from tests.test_webhooks import SECRET, Receiver

pytestmark = pytest.mark.integration

ALICE = {"Authorization": "Bearer alice-key-for-tests"}
BOB = {"Authorization": "Bearer bob-key-for-tests"}
STREAM_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def app(deploy_app, tiny_model_dir):
    return deploy_app(
        model_path=str(tiny_model_dir),
        max_new_tokens=400,
        bench_ignore_eos=True,
        self_repair=False,
        cache_enabled=False,
        api_keys="alice-key-for-tests,bob-key-for-tests",
        webhook_allowed_hosts="127.0.0.1",
        webhook_secret=SECRET,
        webhook_backoff_s=0.05,
        task_events_poll_s=0.1,
        task_events_ping_s=1,
        task_progress_interval_s=0.2,
    )


@pytest.fixture(scope="module")
def client(app):
    with app.client() as client:
        yield client


@pytest.fixture(scope="module")
def receiver():
    with Receiver() as running:
        yield running


def read_events(client, task_id, headers=ALICE) -> tuple[list[tuple[str, dict]], list[str], float]:
    """Every event of the stream as (name, data), its comment lines, and how long it was open;
    the stream must end by itself within STREAM_TIMEOUT_S."""
    events, comments, name, data = [], [], "message", []
    started = time.monotonic()
    with client.stream(
        "GET", f"/api/tasks/{task_id}/events", headers=headers, timeout=STREAM_TIMEOUT_S
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            assert time.monotonic() - started < STREAM_TIMEOUT_S
            if line.startswith(":"):
                comments.append(line)
            elif line.startswith("event:"):
                name = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data.append(line.partition(":")[2].strip())
            elif line == "" and data:
                events.append((name, json.loads("\n".join(data))))
                name, data = "message", []
    return events, comments, time.monotonic() - started


def error_of(response: httpx.Response) -> dict:
    return ErrorResponse.model_validate(response.json()).error.model_dump()


def test_events_show_a_task_live_and_end_by_themselves_then_the_webhook_arrives(client, receiver):
    created = client.post(
        "/api/tasks/",
        json={"prompt": "制作一段关于森林探险的短视频", "callback_url": receiver.url},
        headers=ALICE,
    )
    assert created.status_code == 202, created.text
    task_id = created.json()["task_id"]
    assert created.json()["webhook"] == {
        "url": receiver.url,
        "state": "pending",
        "attempts": 0,
        "last_status": None,
        "last_error": None,
    }
    events, comments, open_s = read_events(client, task_id)
    names = [name for name, _ in events]
    assert names[-1] == "done" and set(names[:-1]) == {"status", "scene"}
    statuses = [data for name, data in events if name == "status"]
    progress = [status["progress"] for status in statuses]
    assert progress == sorted(progress) and progress[-1] == 100
    stages = [status["stage"] for status in statuses]
    assert "generating" in stages and stages[-1] == "completed"
    assert stages.index("generating") < stages.index("completed")
    # Token counts grow while the model generates.
    tokens = [status["generated_tokens"] for status in statuses if status["stage"] == "generating"]
    assert tokens == sorted(tokens) and tokens[-1] > tokens[0]
    done = TaskResponse.model_validate(events[-1][1])
    assert (done.task_id, done.status, done.progress) == (task_id, "completed", 100)
    # Each scene once, in order, while the task ran; the first reply parsed (no repair turn),
    # so each is the finished script's scene, but for the duration (shared out to the total
    # once the script is whole).
    assert done.source == "llm"
    scenes = [data for name, data in events if name == "scene"]
    assert [(s["task_id"], s["draft"], s["index"]) for s in scenes] == [
        (task_id, 1, index) for index in range(len(scenes))
    ]
    final = done.model_dump(mode="json")["result"]["scenes"]
    assert 1 <= len(scenes) <= len(final)
    for sent, kept in zip(scenes, final, strict=False):
        assert {**sent["scene"], "duration": kept["duration"]} == kept
    if open_s > 2.5:  # heartbeats every second while the task ran
        assert any(comment.startswith(": ping") for comment in comments)

    deadline = time.monotonic() + 30
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.1)
    [(headers, body)] = receiver.received
    sent = Webhook(SECRET).verify(body, headers)
    assert (sent["task_id"], sent["status"]) == (task_id, "completed")
    assert sent["result"] == done.model_dump(mode="json")["result"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        webhook = client.get(f"/api/tasks/{task_id}", headers=ALICE).json()["webhook"]
        if webhook["state"] != "delivering" and webhook["state"] != "pending":
            break
        time.sleep(0.1)
    assert webhook == {
        "url": receiver.url,
        "state": "delivered",
        "attempts": 1,
        "last_status": 200,
        "last_error": None,
    }

    # A finished task: its final state, then the end.
    events, _, _ = read_events(client, task_id)
    assert [name for name, _ in events] == ["status", "done"]
    assert events[0][1] == {
        "task_id": task_id,
        "status": "completed",
        "stage": "completed",
        "progress": 100,
        "generated_tokens": 400,  # EOS ignored: the whole budget
    }


def test_events_of_an_unknown_or_foreign_task_are_a_404(client):
    missing = client.get("/api/tasks/no-such-task/events", headers=ALICE)
    assert missing.status_code == 404 and error_of(missing)["type"] == "not_found"
    task_id = client.post("/api/tasks/", json={"prompt": "城市夜景"}, headers=ALICE).json()[
        "task_id"
    ]
    foreign = client.get(f"/api/tasks/{task_id}/events", headers=BOB)
    assert foreign.status_code == 404 and error_of(foreign)["type"] == "not_found"
    assert client.get(f"/api/tasks/{task_id}/events").status_code == 401


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://192.0.2.1/hook", "not in webhook_allowed_hosts"),
        ("http://169.254.169.254/latest/meta-data", "link-local or metadata"),
        ("ftp://127.0.0.1/hook", "URL scheme"),
    ],
)
def test_a_refused_callback_url_is_a_422_naming_it_and_nothing_is_stored(client, url, problem):
    before = client.get("/api/tasks/", headers=ALICE).json()["total"]
    response = client.post(
        "/api/tasks/", json={"prompt": "城市夜景", "callback_url": url}, headers=ALICE
    )
    assert response.status_code == 422
    [field] = error_of(response)["fields"]
    assert field["field"] == "body.callback_url" and problem in field["problem"]
    assert client.get("/api/tasks/", headers=ALICE).json()["total"] == before
