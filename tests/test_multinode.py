"""`serve deploy` on a real two-node Ray cluster: placement, autoscaling up and down, and the loss
of a node under load.

Two `ray start --block` processes on this machine form the cluster: a head (2 CPUs and 4 units of
the custom resource `chatglm`) and a worker (no CPUs, 2 `chatglm`). The test config is the CPU
profile (serve_config.cpu.yaml, via loadtests.service.cpu_profile_config) with the tiny model and
ChatGLM replicas that each need one `chatglm` and no CPU, so ChatGLM replicas may run on either
node while the ingress, processor and task store (which need CPUs) run on the head, like the
proxy (HeadOnly). The test reads placement from the dashboard's Serve REST API.

It shows: ChatGLM replicas on both nodes after the deploy; more replicas under load
(target_ongoing_requests 1, upscale_delay_s 1); the worker's processes killed by pid under load,
after which ChatGLM runs on the head only; every task the service accepted (202) ends completed
or failed with a reason, none stays running; no connection error from the head's proxy; and the
replica count back at min_replicas once the load stops (downscale_delay_s 4).

This cluster is private and separate from the session cluster of tests/conftest.py (which
`ray.init`s in this process): its own free ports, its own --temp-dir, its own auth token (a node
joins a cluster on this machine only with RAY_AUTH_MODE=token), no RAY_ADDRESS inherited, and no
driver in this process. Everything it started is killed by process id at the end. Run it under
the Ray lock like every test that starts Ray:
    flock /tmp/vss-ray.lock .venv/bin/python -m pytest -q tests/test_multinode.py
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from loadtests.service import cpu_profile_config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
APP = "video-script"
CHATGLM = "ChatGLM"
MIN_REPLICAS, MAX_REPLICAS = 2, 4
HEAD_CHATGLM, WORKER_CHATGLM = 4, 2
CLIENTS = 8
PROMPTS = ["制作一段关于森林探险的短视频", "A short film about a lost umbrella", "城市夜景延时摄影"]
FINISHED = ("completed", "failed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def node_ports() -> list[str]:
    """Every port a node would otherwise take at its default (and collide with the session
    cluster, another engineer's, or the other node of this one)."""
    flags = [
        "--node-manager-port",
        "--object-manager-port",
        "--metrics-export-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
    ]
    return [item for flag in flags for item in (flag, str(free_port()))]


def wait_until(what: str, check, timeout_s: float, every_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every_s)
    raise TimeoutError(f"{what}: not within {timeout_s} s")


class TwoNodeCluster:
    """A head and a worker, each a `ray start --block` process in its own session."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        # Unix socket paths under the temp dir must stay short: not pytest's tmp_path.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="vss-mn-", dir="/tmp"))
        self.token = secrets.token_hex(16)
        self.gcs_port = free_port()
        self.dashboard_port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "VSS_"))}
        self.env.update(
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN=self.token,
            RAY_USAGE_STATS_ENABLED="0",
            # notice a dead node in ~3 s, not GCS's default ~15 s
            RAY_health_check_period_ms="1000",
            RAY_health_check_failure_threshold="3",
        )
        self.head: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def _ray_start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 (the child keeps it)
        try:
            return subprocess.Popen(
                [str(BIN / "ray"), "start", "--block", "--node-ip-address", "127.0.0.1", *args],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()

    def start(self) -> None:
        self.head = self._ray_start(
            "head",
            [
                "--head",
                f"--port={self.gcs_port}",
                f"--dashboard-port={self.dashboard_port}",
                "--dashboard-host=127.0.0.1",
                f"--ray-client-server-port={free_port()}",
                f"--temp-dir={self.temp_dir}",
                "--num-cpus=2",
                f"--resources={json.dumps({'chatglm': HEAD_CHATGLM})}",
                *node_ports(),
            ],
        )
        wait_until("the head's dashboard", lambda: self._answers("/api/version"), 60)
        self.worker = self._ray_start(
            "worker",
            [
                f"--address=127.0.0.1:{self.gcs_port}",
                "--num-cpus=0",
                f"--resources={json.dumps({'chatglm': WORKER_CHATGLM})}",
                *node_ports(),
            ],
        )
        wait_until("two alive nodes", lambda: len(self.alive_nodes()) == 2, 60)

    def _answers(self, path: str) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return self.get(path).status_code == 200
        return False

    def get(self, path: str) -> httpx.Response:
        return httpx.get(
            self.dashboard + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=10
        )

    def alive_nodes(self) -> dict[str, str]:
        """node id → "head" or "worker", for the nodes the GCS has alive."""
        nodes = self.get("/api/v0/nodes?detail=true&limit=10").json()["data"]["result"]["result"]
        return {
            node["node_id"]: "head" if node["is_head_node"] else "worker"
            for node in nodes
            if node["state"] == "ALIVE"
        }

    def serve_deploy(self, config_path: Path) -> None:
        subprocess.run(
            [str(BIN / "serve"), "deploy", str(config_path), "--address", self.dashboard],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def serve_details(self) -> dict:
        return self.get("/api/serve/applications/").json()

    def kill_tree(self, process: subprocess.Popen | None) -> list[int]:
        """SIGKILL a `ray start --block` process and everything under it, by pid."""
        if process is None or process.poll() is not None:
            return []
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(process.pid)
            tree = [root, *root.children(recursive=True)]
            for proc in tree:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            psutil.wait_procs(tree, timeout=15)
            return [proc.pid for proc in tree]
        return []

    def stop(self) -> None:
        self.kill_tree(self.worker)
        self.kill_tree(self.head)
        # Anything of this cluster that outlived its parent (a worker process re-parented while
        # its raylet died) still names the private temp dir on its command line.
        marker = str(self.temp_dir)
        for proc in psutil.process_iter(["pid", "cmdline"]):
            with contextlib.suppress(psutil.Error, TypeError):
                if any(marker in part for part in proc.info["cmdline"] or []):
                    proc.kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@dataclass
class Sample:
    at_s: float
    chatglm_by_node: dict[str, int]  # "head"/"worker" → RUNNING ChatGLM replicas

    @property
    def total(self) -> int:
        return sum(self.chatglm_by_node.values())


@dataclass
class Observations:
    """What the watcher and the clients saw; read after the threads stopped."""

    samples: list[Sample] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    answers: Counter = field(default_factory=Counter)
    connection_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def chatglm_replicas(details: dict) -> list[dict]:
    app = details.get("applications", {}).get(APP)
    if not app:
        return []
    return app["deployments"].get(CHATGLM, {}).get("replicas", [])


def watch(cluster: TwoNodeCluster, roles: dict[str, str], seen: Observations, stop, t0) -> None:
    """Sample RUNNING ChatGLM replicas per node every 0.5 s."""
    while not stop.is_set():
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            running = [
                r for r in chatglm_replicas(cluster.serve_details()) if r["state"] == "RUNNING"
            ]
            by_node = Counter(roles.get(r["node_id"], "?") for r in running)
            with seen.lock:
                seen.samples.append(Sample(time.monotonic() - t0, dict(by_node)))
        stop.wait(0.5)


def client_loop(url: str, number: int, seen: Observations, stop) -> None:
    """Create a task (async), poll it until it finishes, again, until told to stop."""
    with httpx.Client(base_url=url, timeout=30) as http:
        for round_ in range(1000):
            if stop.is_set():
                return
            body = {"prompt": PROMPTS[(number + round_) % len(PROMPTS)], "num_scenes": 3}
            try:
                created = http.post("/api/tasks/", json=body)
                with seen.lock:
                    seen.answers[created.status_code] += 1
                if created.status_code != 202:
                    stop.wait(0.5)  # 503: retry later, as a client should
                    continue
                task_id = created.json()["task_id"]
                with seen.lock:
                    seen.accepted.append(task_id)
                for _ in range(240):
                    if (
                        stop.is_set()
                        or http.get(f"/api/tasks/{task_id}").json()["status"] in FINISHED
                    ):
                        break
                    time.sleep(0.25)
            except (httpx.TransportError, ValueError) as error:
                with seen.lock:
                    seen.connection_errors.append(f"{type(error).__name__}: {error}")
                stop.wait(0.5)


def test_two_nodes_autoscaling_and_losing_a_node_under_load(tiny_model_dir, tmp_path, capsys):
    port = free_port()
    config = cpu_profile_config(
        port,
        {
            "model_path": str(tiny_model_dir),
            "task_db_path": str(tmp_path / "tasks.db"),
            "max_new_tokens": 24,
            "max_batch_size": 4,
            "task_lease_s": 5,  # a task whose worker died is adopted after 5 s
            "generation_timeout_s": 30,
        },
        {
            CHATGLM: {
                "ray_actor_options": {"num_cpus": 0, "num_gpus": 0, "resources": {"chatglm": 1}},
                "max_ongoing_requests": 8,
                "autoscaling_config": {
                    "min_replicas": MIN_REPLICAS,
                    "max_replicas": MAX_REPLICAS,
                    "target_ongoing_requests": 1,
                    "upscale_delay_s": 1,
                    "downscale_delay_s": 4,
                    "metrics_interval_s": 0.5,
                    "look_back_period_s": 2,
                },
                "health_check_period_s": 2,
                "graceful_shutdown_timeout_s": 2,
            }
        },
    )
    config_path = tmp_path / "serve_config.multinode.yaml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True))
    url = f"http://127.0.0.1:{port}"

    cluster = TwoNodeCluster(tmp_path)
    seen = Observations()
    stop_clients, stop_watch = threading.Event(), threading.Event()
    threads: list[threading.Thread] = []
    try:
        cluster.start()
        roles = cluster.alive_nodes()
        [worker_node] = [node for node, role in roles.items() if role == "worker"]
        cluster.serve_deploy(config_path)

        def deployed() -> list[dict] | None:
            details = cluster.serve_details()
            app = details.get("applications", {}).get(APP, {})
            if app.get("status") == "DEPLOY_FAILED":
                pytest.fail(f"serve deploy failed: {app.get('message')}")
            running = [r for r in chatglm_replicas(details) if r["state"] == "RUNNING"]
            return running if app.get("status") == "RUNNING" else None

        placed = wait_until("the app RUNNING", deployed, 150, every_s=1)
        first_nodes = Counter(roles[r["node_id"]] for r in placed)
        assert set(first_nodes) == {"head", "worker"}, f"ChatGLM replicas on {first_nodes}"

        t0 = time.monotonic()
        watcher = threading.Thread(target=watch, args=(cluster, roles, seen, stop_watch, t0))
        watcher.start()
        threads.append(watcher)
        for number in range(CLIENTS):
            client = threading.Thread(target=client_loop, args=(url, number, seen, stop_clients))
            client.start()
            threads.append(client)

        def scaled_up() -> bool:
            with seen.lock:
                return any(sample.total > MIN_REPLICAS for sample in seen.samples)

        wait_until("ChatGLM scaled up under load", scaled_up, 60)
        killed_at = time.monotonic() - t0
        killed = cluster.kill_tree(cluster.worker)
        assert killed, "the worker node had no processes to kill"

        def on_the_head_only() -> bool:
            if worker_node in cluster.alive_nodes():
                return False
            running = [
                r for r in chatglm_replicas(cluster.serve_details()) if r["state"] == "RUNNING"
            ]
            # the load still asks for more than min_replicas: the lost ones come back here
            on_head = all(roles[r["node_id"]] == "head" for r in running)
            return on_head and len(running) > MIN_REPLICAS

        wait_until("ChatGLM back above min_replicas on the head alone", on_the_head_only, 90)
        stop_clients.set()
        for thread in threads[1:]:
            thread.join(60)
        load_stopped_at = time.monotonic() - t0

        with httpx.Client(base_url=url, timeout=30) as http:

            def finished() -> dict[str, dict] | None:
                tasks = {
                    task_id: http.get(f"/api/tasks/{task_id}").json() for task_id in seen.accepted
                }
                done = all(task["status"] in FINISHED for task in tasks.values())
                return tasks if done else None

            tasks = wait_until("every accepted task finished", finished, 90, every_s=1)
            # every task the store holds, accepted by a client or not (a POST cut off by the
            # node loss after it was stored), is finished
            unfinished = {
                status: http.get("/api/tasks/", params={"status": status}).json()["total"]
                for status in ("pending", "running")
            }

        def scaled_down() -> bool:
            with seen.lock:
                last = seen.samples[-1] if seen.samples else None
            return last is not None and last.at_s > load_stopped_at and last.total == MIN_REPLICAS

        wait_until("ChatGLM back at min_replicas", scaled_down, 60)
    finally:
        stop_clients.set()
        stop_watch.set()
        for thread in threads:
            thread.join(30)
        cluster.stop()

    outcomes = Counter(f"{task['status']}/{task.get('source') or '-'}" for task in tasks.values())
    failed_without_reason = [
        task_id
        for task_id, task in tasks.items()
        if task["status"] == "failed" and not task["error"]
    ]
    lost = len(seen.accepted) - sum(1 for task in tasks.values() if task["status"] in FINISHED)
    peak = max(seen.samples, key=lambda sample: sample.total)
    changes = [
        f"{sample.at_s:.0f}s:{sample.total}"
        for before, sample in zip([None, *seen.samples], seen.samples, strict=False)
        if before is None or before.total != sample.total
    ]
    with capsys.disabled():
        print(
            f"\n[multinode] ChatGLM after deploy: {dict(first_nodes)}; peak under load "
            f"{peak.total} ({peak.chatglm_by_node}) at {peak.at_s:.1f} s; worker killed at "
            f"{killed_at:.1f} s ({len(killed)} processes); after: "
            f"{seen.samples[-1].chatglm_by_node}"
            f"\n[multinode] tasks accepted {len(seen.accepted)}, outcomes {dict(outcomes)}, lost "
            f"{lost}; POST answers {dict(seen.answers)}; connection errors "
            f"{len(seen.connection_errors)}; unfinished in the store {unfinished}"
            f"\n[multinode] RUNNING ChatGLM replicas over time: {' '.join(changes)} (load "
            f"stopped at {load_stopped_at:.0f} s)"
        )
    assert peak.total > MIN_REPLICAS
    after_kill = [sample for sample in seen.samples if sample.at_s > killed_at]
    assert any(s.total > MIN_REPLICAS and set(s.chatglm_by_node) == {"head"} for s in after_kill)
    assert after_kill[-1].total == MIN_REPLICAS  # and down again once the load stopped
    assert seen.connection_errors == []
    assert seen.accepted, "no task was accepted"
    assert lost == 0
    assert failed_without_reason == []
    assert unfinished == {"pending": 0, "running": 0}
    assert seen.answers.keys() <= {202, 503}, seen.answers
