"""Metrics and model status with two model replicas, over real HTTP: known traffic, then Ray's
Prometheus endpoint (the session cluster's metrics export port) is scraped and its values held
against what the service itself reports, replica by replica."""

from __future__ import annotations

import math
import time
from collections import defaultdict

import httpx
import pytest
from conftest import ask
from prometheus_client.parser import text_string_to_metric_families
from ray import serve
from test_metrics import RAY_SERVE_SERIES
from test_webhooks import SECRET, Receiver

from deployments.metrics import BATCH_SIZE_BUCKETS

pytestmark = pytest.mark.integration

APP = "vss-metrics"  # the app's name: every series of this module's app carries it
TASKS = 4
SCRAPE_DEADLINE_S = 60  # Ray reports every 2 s in the test cluster (tests/conftest.py)


@pytest.fixture(scope="module")
def receiver():
    """A webhook receiver on loopback: the first POST gets a 503 (retried), the next a 200."""
    with Receiver(statuses=[503]) as running:
        yield running


@pytest.fixture(scope="module")
def app(serve_instance, tiny_model_dir, tmp_path_factory):
    args = {
        "model_path": str(tiny_model_dir),
        "max_new_tokens": 24,
        "task_db_path": str(tmp_path_factory.mktemp("db") / "tasks.db"),
        "webhook_allowed_hosts": ["127.0.0.1"],
        "webhook_secret": SECRET,
        "webhook_backoff_s": 0.1,
    }
    try:
        yield serve_instance.deploy(args, name=APP, chat_replicas=2)
    finally:
        serve_instance.delete_apps()


@pytest.fixture(scope="module")
def traffic(app, receiver):
    """TASKS finished tasks (the first with a webhook, delivered at the second attempt), one
    404 and one streamed chat request; the tasks as the service returned them."""
    with app.client(timeout=300) as client:
        tasks = [
            client.post(
                "/api/tasks/",
                json={
                    "prompt": f"制作一段关于森林探险的短视频，第{i}集",
                    **({"callback_url": receiver.url} if i == 0 else {}),
                },
                params={"wait": "true"},
            )
            for i in range(TASKS)
        ]
        assert client.get("/api/tasks/no-such-task").status_code == 404
    assert all(task.status_code == 200 for task in tasks)
    # One streamed chat request (as /v1 sends with stream: true), counted like the others.
    chat = serve.get_deployment_handle("ChatGLM", app_name=APP).options(stream=True)
    *deltas, result = chat.chat_stream.remote(ask("hi", max_new_tokens=5, ignore_eos=True))
    assert result.completion_tokens == 5 and "".join(d.text for d in deltas) == result.text
    deadline = time.monotonic() + 60
    while len(receiver.received) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(receiver.received) == 2
    return [task.json() for task in tasks]


@pytest.fixture(scope="module")
def status(app, traffic):
    with app.client() as client:
        response = client.get("/api/model/status")
    assert response.status_code == 200
    return response.json()


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of this module's app: name → [(labels, value)]."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(httpx.get(url, timeout=10).text):
        for sample in family.samples:
            if sample.labels.get("application") == APP:
                samples[sample.name].append((sample.labels, sample.value))
    return samples


def total(samples, name: str, **labels: str) -> float:
    return sum(
        value
        for sample_labels, value in samples.get(name, [])
        if all(sample_labels.get(k) == v for k, v in labels.items())
    )


def by_replica(samples, name: str) -> dict[str, float]:
    values: dict[str, float] = defaultdict(float)
    for labels, value in samples.get(name, []):
        values[labels["replica"]] += value
    return dict(values)


def expected_values(traffic, status) -> dict[tuple[str, tuple], float]:
    """(series, label filter) → the value the scrape must show, from the service's answers."""
    counters = status["counters"]
    sources = defaultdict(int)
    for task in traffic:
        sources[task["source"]] += 1
    expected = {("ray_vss_scripts_total", ()): TASKS}
    for source, count in sources.items():
        expected["ray_vss_scripts_total", (("source", source),)] = count
    # The quality checks each task's response shows, counted as the pipeline handed it over.
    for check, field in (("duration", "duration_ok"), ("narration", "narration_ok")):
        passed = sum(bool(task["quality"][field]) for task in traffic)
        expected["ray_vss_script_quality_checks_total", (("check", check), ("result", "pass"))] = (
            passed
        )
        expected["ray_vss_script_quality_checks_total", (("check", check), ("result", "fail"))] = (
            TASKS - passed
        )
    # Each bucket: the batches of at most `le` requests (Ray derives a histogram's _sum from
    # bucket midpoints, so the buckets, not the sum, are what is exact).
    sizes = {int(size): count for size, count in counters["batch_size_histogram"].items()}
    for bound in (*BATCH_SIZE_BUCKETS, math.inf):
        le = "+Inf" if bound == math.inf else str(float(bound))
        at_most = sum(count for size, count in sizes.items() if size <= bound)
        expected["ray_vss_batch_size_bucket", (("le", le),)] = at_most
    expected.update(
        {
            ("ray_vss_parse_failures_total", ()): status["scripts"]["parse_failures"],
            ("ray_vss_generation_seconds_count", ()): counters["requests"],
            ("ray_vss_time_to_first_token_seconds_count", ()): counters["requests"],
            ("ray_vss_generated_tokens_total", ()): counters["generated_tokens"],
            ("ray_vss_batch_size_count", ()): counters["batches"],
            ("ray_vss_prefix_cache_hits_total", ()): status["prefix_cache"]["hits"],
            ("ray_vss_tasks_unfinished", ()): 0,
            ("ray_vss_webhook_deliveries_total", (("outcome", "retrying"),)): 1,
            ("ray_vss_webhook_deliveries_total", (("outcome", "delivered"),)): 1,
            ("ray_vss_webhook_deliveries_total", (("outcome", "failed"),)): 0,
        }
    )
    return expected


def scrape_until_settled(url: str, expected) -> dict:
    """Scrape until every expected value shows (Ray's agent exports on an interval)."""
    deadline = time.monotonic() + SCRAPE_DEADLINE_S
    while True:
        samples = scrape(url)
        settled = all(
            total(samples, name, **dict(labels)) == value
            for (name, labels), value in expected.items()
        ) and all(name in samples for name in RAY_SERVE_SERIES)
        if settled or time.monotonic() > deadline:
            return samples
        time.sleep(1)


def test_model_status_names_both_replicas_and_sums_their_counters(status, traffic):
    replicas = status["replicas"]
    assert len(replicas) == 2 and status["replicas_unreachable"] == 0
    assert len({replica["replica_id"] for replica in replicas}) == 2
    assert all(replica["loaded"] for replica in replicas) and status["loaded"] is True
    for key in ("requests", "batches", "generated_tokens"):
        assert status["counters"][key] == sum(r["counters"][key] for r in replicas)
    # Every task asked the model at least once (a repair asks again).
    assert status["counters"]["requests"] >= TASKS
    assert status["host_rss_mb"] == pytest.approx(sum(r["host_rss_mb"] for r in replicas), 0.01)
    assert status["scripts"]["llm"] + status["scripts"]["llm_repaired"] + status["scripts"][
        "fallback"
    ] == len(traffic)


def test_scraped_metrics_match_the_known_traffic(serve_instance, traffic, status):
    expected = expected_values(traffic, status)
    samples = scrape_until_settled(serve_instance.metrics_url, expected)
    shown = {key: total(samples, key[0], **dict(key[1])) for key in expected}
    assert shown == expected
    assert total(samples, "ray_vss_prompt_tokens_total") > 0
    assert set(samples) >= RAY_SERVE_SERIES  # every Ray series the dashboard uses
    assert total(samples, "ray_serve_num_http_error_requests_total", error_code="404") >= 1


def test_model_metrics_are_per_replica_as_the_replicas_report(serve_instance, status):
    per_replica = {r["replica_id"]: r["counters"]["requests"] for r in status["replicas"]}
    expected = {("ray_vss_generation_seconds_count", ()): status["counters"]["requests"]}
    samples = scrape_until_settled(serve_instance.metrics_url, expected)
    scraped = by_replica(samples, "ray_vss_generation_seconds_count")
    assert scraped == {replica: count for replica, count in per_replica.items() if count}


def test_unload_and_load_reach_every_replica(app):
    with app.client() as client:
        unloaded = client.post("/api/model/unload").json()
        assert unloaded["loaded"] is False
        assert [r["loaded"] for r in unloaded["replicas"]] == [False, False]
        loaded = client.post("/api/model/load").json()
        assert [r["loaded"] for r in loaded["replicas"]] == [True, True]
        assert loaded["loaded"] is True and loaded["reason"] is None
