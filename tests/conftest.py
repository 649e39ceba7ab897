"""Shared fixtures: a tiny model built by the project's own script, and a real Serve app."""

from __future__ import annotations

import copy
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CPU_PROFILE = ROOT / "serve_config.cpu.yaml"
APP_NAME = "video-script"


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
    config = yaml.safe_load(CPU_PROFILE.read_text())
    config = copy.deepcopy(config)
    config["applications"][0]["args"].update(args)
    return config


class ServeApp:
    """The CPU profile deployed the way `serve run serve_config.cpu.yaml` deploys it."""

    def __init__(self, config: dict):
        self.config = config
        self.port = config["http_options"]["port"]
        self.url = f"http://127.0.0.1:{self.port}"

    def deploy(self, timeout_s: float = 240) -> None:
        from ray import serve
        from ray.serve._private import api as serve_api
        from ray.serve.schema import ServeDeploySchema

        schema = ServeDeploySchema.model_validate(self.config)
        client = serve_api.serve_start(
            http_options=schema.http_options.model_dump(), proxy_location=schema.proxy_location
        )
        client.deploy_apps(schema, _blocking=False)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            app = serve.status().applications.get(APP_NAME)
            if app is not None and app.status == "RUNNING":
                self.wait_for_http(deadline)
                return
            if app is not None and app.status == "DEPLOY_FAILED":
                raise RuntimeError(f"deploy failed: {app.message}")
            time.sleep(0.5)
        raise TimeoutError(f"app not running after {timeout_s} s: {serve.status()}")

    def wait_for_http(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError("the HTTP proxy never answered /health")

    def client(self, timeout: float = 120) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A real local Ray cluster for one test module (starting one costs ~10 s on 2 cores)."""
    import ray
    from ray import serve

    ray.init(num_cpus=2, namespace="serve", include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="module")
def deploy_app(ray_cluster, tmp_path_factory):
    """Deploy the CPU profile with given app args on a free port; returns the ServeApp."""

    def deploy(**args) -> ServeApp:
        args.setdefault("task_db_path", str(tmp_path_factory.mktemp("db") / "tasks.db"))
        config = cpu_profile(**args)
        config["http_options"]["port"] = free_port()
        app = ServeApp(config)
        app.deploy()
        return app

    return deploy
