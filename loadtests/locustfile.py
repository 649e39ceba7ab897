"""The realistic traffic mix: async create + poll, sync create, status and health reads.

    locust -f loadtests/locustfile.py --headless -u 16 -r 4 -t 60s --host http://127.0.0.1:8000

A 200 whose script does not validate as a VideoScript counts as a failure. At the end, the exit
code is 1 when more than 0.5 % of requests failed or the p95 of any request kind exceeded
`--p95-ms` (default 10 000 ms: the product brief's "one script < 10 s").
"""

from __future__ import annotations

import random
import time

from locust import FastHttpUser, between, events, task

from loadtests.checks import finished_task_problem
from loadtests.prompts import script_request

MAX_FAIL_RATIO = 0.005
POLL_INTERVAL_S = 0.25
POLL_TIMEOUT_S = 120.0


@events.init_command_line_parser.add_listener
def add_thresholds(parser) -> None:
    parser.add_argument(
        "--p95-ms",
        type=float,
        default=10_000.0,
        env_var="LOCUST_P95_MS",
        help="Fail the run when any request kind's p95 exceeds this (ms).",
    )


@events.quitting.add_listener
def fail_on_thresholds(environment, **_kwargs) -> None:
    """Exit non-zero when the failure ratio or a p95 is over its bound."""
    stats = environment.stats
    bound_ms = environment.parsed_options.p95_ms
    problems = []
    if stats.total.fail_ratio > MAX_FAIL_RATIO:
        problems.append(f"failure ratio {stats.total.fail_ratio:.2%} > {MAX_FAIL_RATIO:.1%}")
    for entry in stats.entries.values():
        p95 = entry.get_response_time_percentile(0.95)
        if entry.num_requests and p95 > bound_ms:
            problems.append(f"p95 of {entry.method} {entry.name} = {p95:.0f} ms > {bound_ms:.0f}")
    for problem in problems:
        print(f"THRESHOLD FAILED: {problem}")
    if problems:
        environment.process_exit_code = 1


class ScriptClient(FastHttpUser):
    """A client of the video platform: mostly asks for scripts, sometimes checks the service."""

    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.rng = random.Random()

    @task(4)
    def create_and_poll(self) -> None:
        started = time.perf_counter()
        with self.client.post(
            "/api/tasks/",
            json=script_request(self.rng),
            name="POST /api/tasks/",
            catch_response=True,
        ) as response:
            if response.status_code != 202 or not response.headers.get("Location"):
                response.failure(f"expected 202 with Location, got {response.status_code}")
                return
            location = response.headers["Location"]
        task = self.poll_until_finished(location)
        problem = "poll timed out" if task is None else finished_task_problem(task)
        events.request.fire(
            request_type="TASK",
            name="async task end to end",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=AssertionError(problem) if problem else None,
            context={},
        )

    def poll_until_finished(self, location: str) -> dict | None:
        deadline = time.monotonic() + POLL_TIMEOUT_S
        while time.monotonic() < deadline:
            with self.client.get(
                location, name="GET /api/tasks/[id]", catch_response=True
            ) as response:
                if response.status_code != 200:
                    response.failure(f"status {response.status_code}")
                    return None
                task = response.json()
                if task.get("status") in ("completed", "failed"):
                    problem = finished_task_problem(task)
                    if problem:
                        response.failure(problem)
                    return task
            time.sleep(POLL_INTERVAL_S)
        return None

    @task(2)
    def create_and_wait(self) -> None:
        with self.client.post(
            "/api/tasks/?wait=true",
            json=script_request(self.rng),
            name="POST /api/tasks/?wait=true",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"expected 200, got {response.status_code}")
                return
            problem = finished_task_problem(response.json())
            if problem:
                response.failure(problem)

    @task(1)
    def model_status(self) -> None:
        with self.client.get(
            "/api/model/status", name="GET /api/model/status", catch_response=True
        ) as response:
            if response.status_code != 200 or "counters" not in response.json():
                response.failure(f"status {response.status_code} or no counters")

    @task(1)
    def health(self) -> None:
        with self.client.get("/health", name="GET /health", catch_response=True) as response:
            if response.status_code != 200 or response.json().get("status") not in (
                "ok",
                "degraded",
            ):
                response.failure(f"status {response.status_code}: {response.text[:200]}")
