"""Start the CPU profile the way a user does (`serve run`), on a private cluster, and stop it.

Load tests and benchmarks must measure what `make serve` runs, and must never touch a Ray
cluster someone else started on the same machine: `RAY_ADDRESS=local` makes `serve run` start
its own, and `stop()` ends only the processes this object started.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
CPU_PROFILE = ROOT / "serve_config.cpu.yaml"
SERVE_BIN = Path(sys.executable).with_name("serve")
REPLICA_TITLE = "ray::ServeReplica:"
DEPLOY_FAILED_MARKER = b"Failed to update the deployments"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_model(preset: str) -> Path:
    """models/<preset>, built by the project's own script when it is not there yet."""
    out = ROOT / "models" / preset
    if not (out / "config.json").is_file():
        builder = ROOT / "scripts" / "make_tiny_model.py"
        subprocess.run([sys.executable, str(builder), str(out), "--preset", preset], check=True)
    return out


def model_args(model: str) -> dict[str, Any]:
    """App args for `--model`: a preset name (tiny, bench), `none` (fallback only) or a path."""
    if model == "none":
        return {"model_path": str(ROOT / "models" / "absent")}
    if model in ("tiny", "bench"):
        return {"model_path": str(ensure_model(model))}
    return {"model_path": str(Path(model).resolve())}


def cpu_profile_config(
    port: int, args: dict[str, Any], deployments: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """serve_config.cpu.yaml with app args replaced and per-deployment options added (the
    profile lists none: each deployment's defaults are in its decorator)."""
    config = copy.deepcopy(yaml.safe_load(CPU_PROFILE.read_text()))
    config["http_options"]["port"] = port
    app = config["applications"][0]
    app["args"].update(args)
    listed = {entry["name"]: entry for entry in app.setdefault("deployments", [])}
    for name, options in deployments.items():
        listed.setdefault(name, {"name": name}).update(options)
    app["deployments"] = list(listed.values())
    return config


class ServeProcess:
    """`serve run` of the CPU profile on a free port; a context manager that always stops it."""

    def __init__(
        self,
        args: dict[str, Any],
        deployments: dict[str, dict[str, Any]] | None = None,
        log_path: Path | None = None,
        serve_bin: Path = SERVE_BIN,
    ):
        """`serve_bin`: the `serve` of another venv (bench_service.py runs vLLM's from
        .venv-vllm)."""
        self.serve_bin = serve_bin
        self.workdir = Path(tempfile.mkdtemp(prefix="vss-serve-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = {"task_db_path": str(self.workdir / "tasks.db"), **args}
        self.config = cpu_profile_config(self.port, args, deployments or {})
        self.log_path = log_path or self.workdir / "serve.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> ServeProcess:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self, timeout_s: float = 300) -> None:
        config_path = self.workdir / "serve_config.yaml"
        config_path.write_text(yaml.safe_dump(self.config, allow_unicode=True))
        env = {**os.environ, "RAY_ADDRESS": "local", "RAY_USAGE_STATS_ENABLED": "0"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(self.serve_bin), "run", str(config_path)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        print(f">> serve run on {self.url} (log: {self.log_path})", flush=True)
        self.wait_until_serving(timeout_s)

    def wait_until_serving(self, timeout_s: float) -> None:
        """Block until /health answers 200 and the model replica has finished loading."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve run exited with {self.process.returncode}; see log")
            if DEPLOY_FAILED_MARKER in self.log_path.read_bytes():
                self.stop()
                raise RuntimeError(f"a deployment failed to start; see {self.log_path}")
            with contextlib.suppress(httpx.HTTPError):
                health = httpx.get(f"{self.url}/health", timeout=5)
                if health.status_code == 200 and "unreachable" not in (
                    health.json().get("reason") or ""
                ):
                    return
            time.sleep(1)
        self.stop()
        raise TimeoutError(f"the service did not serve within {timeout_s} s; see {self.log_path}")

    def replica_processes(self) -> dict[str, psutil.Process]:
        """Each Serve replica of this service by deployment name, found by its process title."""
        if self.process is None:
            return {}
        replicas = {}
        for child in psutil.Process(self.process.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                title = " ".join(child.cmdline())
                if title.startswith(REPLICA_TITLE):
                    deployment = (
                        title.removeprefix(REPLICA_TITLE).split()[0].split(":")[-1].split(".")[0]
                    )
                    replicas[deployment] = child
        return replicas

    def stop(self, grace_s: float = 60) -> None:
        """SIGINT `serve run` (it shuts Serve and its cluster down), then kill what is left."""
        if self.process is None or self.process.poll() is not None:
            return
        descendants = psutil.Process(self.process.pid).children(recursive=True)
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        _, alive = psutil.wait_procs(descendants, timeout=10)
        for leftover in alive:
            with contextlib.suppress(psutil.Error):
                leftover.kill()
        print(f">> stopped serve run on {self.url}", flush=True)
