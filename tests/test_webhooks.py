"""Webhooks (serve_app/webhooks.py): which callback URLs are allowed, signed delivery to a real
receiver on loopback (verified with standardwebhooks' own verifier), retries with recorded
attempts, and refusals that store nothing."""

from __future__ import annotations

import asyncio
import base64
import http.server
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from standardwebhooks import Webhook

from serve_app.config import Settings
from serve_app.errors import FieldError
from serve_app.task_responses import task_json
from serve_app.task_store import TaskStore
from serve_app.tasks import TaskRunner
from serve_app.webhooks import CallbackRefused, HostPolicy, WebhookSender
from tests.test_task_runner import REQUEST, SCRIPT, HeldPipeline, LocalHandle

SECRET = "whsec_" + base64.b64encode(b"test-secret-of-the-webhooks-test").decode()
OUTCOME = {"script": SCRIPT, "source": "llm", "generation_ms": 1.0}


class Receiver:
    """An HTTP server on loopback answering each POST with the next of `statuses` (then 200);
    keeps every request's headers and body."""

    def __init__(self, statuses: list[int] | None = None):
        self.statuses = list(statuses or [])
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.received.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def settings(**overrides) -> Settings:
    values = {
        "webhook_allowed_hosts": ["127.0.0.1"],
        "webhook_secret": SECRET,
        "webhook_backoff_s": 0.01,
        "webhook_timeout_s": 5.0,
    }
    return Settings(**{**values, **overrides})


def sender_and_store(tmp_path, **overrides) -> tuple[WebhookSender, TaskStore]:
    store = TaskStore(tmp_path / "tasks.db")
    sender = WebhookSender(settings(**overrides), StoreCalls(store), task_json)
    return sender, store


class StoreCalls:
    """`await store.call(method, *args)` on an in-process TaskStore (as StoreClient does)."""

    def __init__(self, store: TaskStore):
        self.store = store

    async def call(self, method: str, *args):
        return getattr(self.store, method)(*args)


def finished_task(store: TaskStore, callback_url: str) -> dict:
    return store.create_completed(
        REQUEST.model_dump(mode="json"), "worker", OUTCOME, callback_url=callback_url
    )


# --- which URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "url"),
    [
        (["127.0.0.1"], "http://127.0.0.1:9000/hook"),
        (["hooks.example.com"], "https://HOOKS.example.com./x"),
        (["*.example.com"], "https://a.b.example.com/x"),
        (["10.0.0.0/8"], "http://10.1.2.3/x"),
        (["*"], "https://8.8.8.8/x"),
        (["*"], "https://hooks.example.org/x"),
        (["169.254.169.254"], "http://169.254.169.254/latest"),  # listed explicitly
    ],
)
def test_allowed_callback_urls(entries, url):
    HostPolicy.parse(entries).check_url(url)


@pytest.mark.parametrize(
    ("entries", "url", "problem"),
    [
        ([], "http://127.0.0.1/hook", "webhooks are off"),
        (["127.0.0.1"], "http://127.0.0.2/hook", "not in webhook_allowed_hosts"),
        (["example.com"], "http://a.example.com/", "not in webhook_allowed_hosts"),
        (["*.example.com"], "http://example.com.evil.net/", "not in webhook_allowed_hosts"),
        (["*"], "http://169.254.169.254/latest/meta-data", "link-local or metadata"),
        (["*"], "http://[fd00:ec2::254]/", "link-local or metadata"),
        (["*"], "http://[::ffff:169.254.169.254]/", "link-local or metadata"),
        (["*"], "http://100.100.100.200/", "link-local or metadata"),
        (["*"], "http://127.0.0.1/", "not in webhook_allowed_hosts"),  # * = public only
        (["*"], "http://localhost:8000/", "not in webhook_allowed_hosts"),
        (["*"], "http://10.0.0.1/", "not in webhook_allowed_hosts"),
    ],
)
def test_refused_callback_urls(entries, url, problem):
    with pytest.raises(CallbackRefused, match=problem):
        HostPolicy.parse(entries).check_url(url)


def test_a_name_is_checked_again_by_the_addresses_it_resolves_to():
    policy = HostPolicy.parse(["*", "hooks.internal"])
    loopback, metadata = ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("169.254.169.254")
    with pytest.raises(CallbackRefused, match="not public"):
        policy.check_addresses("anything.example.org", [loopback])  # * = public addresses only
    policy.check_addresses("hooks.internal", [loopback])  # named by the operator
    with pytest.raises(CallbackRefused, match="link-local or metadata"):
        policy.check_addresses("hooks.internal", [metadata])


def test_webhooks_on_need_a_secret():
    with pytest.raises(ValueError, match="webhook_secret"):
        Settings(webhook_allowed_hosts=["127.0.0.1"])


# --- delivery -----------------------------------------------------------------------------


def test_a_finished_task_reaches_the_receiver_signed(tmp_path, receiver):
    sender, store = sender_and_store(tmp_path)
    task = finished_task(store, receiver.url)
    delivery = asyncio.run(sender.deliver(task))
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 1, 200)
    [(headers, body)] = receiver.received
    verified = Webhook(SECRET).verify(body, headers)  # raises on a bad signature
    assert verified == json.loads(task_json(task))  # the task as GET /api/tasks/{id} shows it
    assert headers["webhook-id"] == f"msg_{task['task_id']}_completed"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 300
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + base64.b64encode(b"another secret").decode()).verify(body, headers)
    stored = store.get(task["task_id"])
    assert (stored["webhook_state"], stored["webhook_attempts"]) == ("delivered", 1)
    assert stored["webhook_last_status"] == 200 and stored["webhook_last_error"] is None
    assert verified["webhook"]["url"] == receiver.url
    assert (verified["status"], verified["source"]) == ("completed", "llm")


def test_server_errors_are_retried_and_each_attempt_is_recorded(tmp_path):
    with Receiver([500, 503, 429]) as receiver:
        sender, store = sender_and_store(tmp_path)
        task = finished_task(store, receiver.url)
        delivery = asyncio.run(sender.deliver(task))
    assert (delivery.state, delivery.attempts) == ("delivered", 4)
    ids = {headers["webhook-id"] for headers, _ in receiver.received}
    assert len(receiver.received) == 4 and len(ids) == 1  # one message, retried
    for headers, body in receiver.received:
        Webhook(SECRET).verify(body, headers)
    stored = store.get(task["task_id"])
    assert (stored["webhook_state"], stored["webhook_attempts"]) == ("delivered", 4)


def test_attempts_run_out_and_the_last_status_is_recorded(tmp_path):
    with Receiver([500] * 10) as receiver:
        sender, store = sender_and_store(tmp_path, webhook_max_attempts=3)
        task = finished_task(store, receiver.url)
        delivery = asyncio.run(sender.deliver(task))
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("failed", 3, 500)
    assert len(receiver.received) == 3
    stored = store.get(task["task_id"])
    assert stored["webhook_state"] == "failed" and stored["webhook_attempts"] == 3
    assert (stored["webhook_last_status"], stored["webhook_last_error"]) == (500, "HTTP 500")


def test_a_client_error_is_not_retried(tmp_path):
    with Receiver([410]) as receiver:
        sender, store = sender_and_store(tmp_path)
        delivery = asyncio.run(sender.deliver(finished_task(store, receiver.url)))
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("failed", 1, 410)


def test_a_receiver_that_is_not_there_is_retried_then_failed(tmp_path):
    with Receiver() as gone:
        url = gone.url
    sender, store = sender_and_store(tmp_path, webhook_max_attempts=2)
    task = finished_task(store, url)
    delivery = asyncio.run(sender.deliver(task))
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("failed", 2, None)
    assert "ConnectError" in store.get(task["task_id"])["webhook_last_error"]


def test_a_name_that_resolves_to_loopback_is_refused_at_delivery_under_star(tmp_path, receiver):
    """`*` lets any name through at creation; before each POST its addresses are checked."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 80)}
    except OSError:
        pytest.skip(f"this machine's name {name!r} does not resolve")
    if any(ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses):
        pytest.skip(f"{name!r} resolves to a public address here")
    sender, store = sender_and_store(tmp_path, webhook_allowed_hosts=["*"])
    task = finished_task(store, receiver.url.replace("127.0.0.1", name))
    delivery = asyncio.run(sender.deliver(task))
    assert delivery.state == "failed" and delivery.attempts == 0
    assert receiver.received == []
    assert store.get(task["task_id"])["webhook_last_error"].startswith("refused:")


# --- through the runner ---------------------------------------------------------------------


def make_runner(tmp_path, **overrides) -> tuple[TaskRunner, TaskStore, HeldPipeline]:
    store = TaskStore(tmp_path / "tasks.db")
    pipeline = HeldPipeline()
    runner = TaskRunner(LocalHandle(store), pipeline, settings(task_lease_s=5.0, **overrides))
    return runner, store, pipeline


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"webhook_allowed_hosts": [], "webhook_secret": None}, "webhooks are off"),
        ({}, "not in webhook_allowed_hosts"),
    ],
)
def test_a_refused_callback_url_is_a_field_error_and_nothing_is_stored(
    tmp_path, overrides, problem
):
    runner, store, pipeline = make_runner(tmp_path, **overrides)

    async def scenario():
        with pytest.raises(FieldError) as refused:
            await runner.submit(REQUEST, callback_url="http://192.0.2.1/hook")
        return refused.value

    error = asyncio.run(scenario())
    assert error.field == "body.callback_url" and problem in error.problem
    assert store.list_tasks(None, 0, 10) == ([], 0) and pipeline.started == 0


def test_the_runner_posts_the_task_when_it_finishes(tmp_path, receiver):
    runner, store, pipeline = make_runner(tmp_path)

    async def scenario():
        task = await runner.submit(REQUEST, callback_url=receiver.url)
        assert task["webhook_state"] == "pending"
        pipeline.release.set()
        await runner.wait(task["task_id"], 10)
        await runner.webhooks.drain(10)
        return task["task_id"]

    task_id = asyncio.run(scenario())
    [(headers, body)] = receiver.received
    assert Webhook(SECRET).verify(body, headers)["task_id"] == task_id
    assert store.get(task_id)["webhook_state"] == "delivered"


def test_a_cancelled_task_is_posted_failed(tmp_path, receiver):
    runner, _, _ = make_runner(tmp_path)

    async def scenario():
        task = await runner.submit(REQUEST, callback_url=receiver.url)
        runner.cancel(task["task_id"], "cancelled: by the test")
        await asyncio.sleep(0.1)
        await runner.webhooks.drain(10)
        return task["task_id"]

    task_id = asyncio.run(scenario())
    [(headers, body)] = receiver.received
    sent = Webhook(SECRET).verify(body, headers)
    assert (sent["task_id"], sent["status"], sent["error"]) == (
        task_id,
        "failed",
        "cancelled: by the test",
    )
    assert headers["webhook-id"].endswith("_failed")
