"""Shared fixtures: a tiny model built by the project's own script, and the real Serve app.

Integration modules share one local Ray cluster and one Serve instance for the whole session (as
Ray's own Serve tests do): starting a cluster costs ~10 s on 2 cores. Each module deploys its app
with public Serve APIs (`serve.run(build_app(args))`) and deletes it at module teardown, so the
next module starts clean. A run of unit tests only (`-m "not integration"`) never starts Ray.
"""

from __future__ import annotations

import copy
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CPU_PROFILE = ROOT / "serve_config.cpu.yaml"
APP_NAME = "video-script"
DEPLOY_TIMEOUT_S = 240
# Logical CPUs for the session's cluster (the machine has 2 cores). The app reserves 1.6 (ChatGLM
# 1 + Ingress 0.25 + ScriptProcessor 0.25 + TaskStore 0.1). When a redeploy with new args replaces
# it, Serve asks for the new replicas while the old ones are still stopping (STOPPING replicas do
# not count toward the target), so a second copy must fit or the new ones wait for the old ones'
# CPUs: 2 x 1.6 <= 4. Scheduling only: the replicas still share the 2 cores.
CLUSTER_CPUS = 4


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random-weight GLM checkpoint, built with scripts/make_tiny_model.py."""
    out = tmp_path_factory.mktemp("models") / "tiny"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_tiny_model.py"), str(out)],
        check=True,
        capture_output=True,
    )
    return out


def ask(text: str, **sampling):
    """A one-message chat request, greedy unless told otherwise."""
    from deployments.engine import GenerationRequest

    sampling.setdefault("temperature", 0.0)
    return GenerationRequest([{"role": "user", "content": text}], **sampling)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_profile(**args) -> dict:
    """The CPU profile's config with some app args replaced."""
    config = copy.deepcopy(yaml.safe_load(CPU_PROFILE.read_text()))
    config["applications"][0]["args"].update(args)
    return config


class ServeApp:
    """One deployed app: the args it was built with and its HTTP address."""

    def __init__(self, args: dict, url: str):
        self.args = args
        self.url = url

    def client(self, timeout: float = 120) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def wait_for_http(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{self.url}/health never answered 200")


def call_within(timeout_s: float, call: Callable[[], object]) -> None:
    """Run `call` (a blocking Serve call) but give up after timeout_s."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as error:  # re-raised in the test's thread
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        from ray import serve

        raise TimeoutError(f"not done after {timeout_s} s: {serve.status()}")
    if errors:
        raise errors[0]


class ServeInstance:
    """Serve on the session's cluster, started like `serve run serve_config.cpu.yaml` starts it:
    the profile's proxy location and HTTP options, on a free port."""

    def __init__(self, metrics_port: int | None = None) -> None:
        self.port = free_port()
        self.metrics_port = metrics_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        """The head node's Prometheus endpoint (Ray's metrics agent, `--metrics-export-port`)."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, port: int | None = None) -> None:
        """Start Serve (on `port` from now on, if given); a no-op while it runs."""
        from ray import serve

        self.port = port or self.port
        profile = cpu_profile()
        serve.start(
            proxy_location=profile["proxy_location"],
            http_options={**profile["http_options"], "port": self.port},
        )

    def deploy(
        self,
        args: dict,
        timeout_s: float = DEPLOY_TIMEOUT_S,
        name: str | None = None,
        chat_replicas: int = 1,
    ) -> ServeApp:
        """The CPU profile's app with `args` (replacing the running one of the same name), once
        Serve reports it RUNNING and its /health answers over HTTP. `name` replaces the app's
        name (its metrics carry it); `chat_replicas` sets the model deployment's num_replicas,
        as a Serve config's `deployments:` entry would."""
        from unittest.mock import patch

        from ray import serve

        import serve_app.app
        from deployments.chatglm import ChatGLMDeployment
        from serve_app.app import build_app

        deadline = time.monotonic() + timeout_s
        self.start()
        config = cpu_profile(**args)
        [application] = config["applications"]
        with patch.object(
            serve_app.app,
            "ChatGLMDeployment",
            ChatGLMDeployment.options(num_replicas=chat_replicas),
        ):
            built = build_app(application["args"])
        call_within(
            timeout_s,
            lambda: serve.run(
                built,
                name=name or application["name"],
                route_prefix=application["route_prefix"],
                logging_config=config["logging_config"],
            ),
        )
        app = ServeApp(application["args"], self.url)
        app.wait_for_http(deadline)
        return app

    def delete_apps(self) -> None:
        from ray import serve

        for name in serve.status().applications:
            serve.delete(name)


@pytest.fixture(scope="session")
def serve_instance() -> Iterator[ServeInstance]:
    """One local Ray cluster and one Serve instance for every integration module."""
    import ray
    from ray import serve

    metrics_port = free_port()
    ray.init(
        num_cpus=CLUSTER_CPUS,
        namespace="serve",
        include_dashboard=False,
        log_to_driver=False,
        # Prometheus metrics on a known port, reported every 2 s (Ray's default 10 s would make
        # tests/test_metrics_scrape.py wait longer for the values it checks).
        _metrics_export_port=metrics_port,
        _system_config={"metrics_report_interval_ms": 2000},
    )
    try:
        instance = ServeInstance(metrics_port)
        instance.start()
        yield instance
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="module")
def deploy_app(serve_instance, tmp_path_factory) -> Iterator[Callable[..., ServeApp]]:
    """Deploy the CPU profile with given app args (a fresh SQLite file unless told); returns the
    ServeApp. Every app is deleted when the module is done."""

    def deploy(**args) -> ServeApp:
        args.setdefault("task_db_path", str(tmp_path_factory.mktemp("db") / "tasks.db"))
        return serve_instance.deploy(args)

    yield deploy
    serve_instance.delete_apps()


@pytest.fixture(scope="session")
def postgres_server():
    """A private PostgreSQL server for the session (tests/postgres_server.py), started on first
    use: the task store's tests run on it as well as on SQLite."""
    from postgres_server import PostgresServer

    server = PostgresServer().init()
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_database(request, tmp_path):
    """An empty task-store database on each backend (a SQLite file; a fresh PostgreSQL
    database on the session's server)."""
    from postgres_server import StoreDatabase

    server = request.getfixturevalue("postgres_server") if request.param == "postgresql" else None
    database = StoreDatabase(request.param, tmp_path, server)
    try:
        yield database
    finally:
        database.close()
