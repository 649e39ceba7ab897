"""Check that this machine can serve the model before starting Serve: a ✔/✖ table.

Python, torch and CUDA, memory against what the chosen precision needs, dependency versions,
Ray resources (when a cluster is running), the model directory (config, every shard its index
names, tokenizer), the HTTP port, and the task store (connection, schema version). Exits
non-zero when any check fails.

    python scripts/verify_setup.py [--model-path DIR] [--precision auto|fp16|...] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from deployments.engine.loading import (
    ModelNotAvailable,
    check_checkpoint,
    open_checkpoint,
    resolve_device,
)
from deployments.engine.quantization import (
    GIB,
    choose_precision,
    free_gpu_bytes,
    model_shape,
)
from serve_app.config import Settings
from serve_app.store.target import describe_schema

REQUIRED = ["torch", "transformers", "tokenizers", "sentencepiece", "safetensors", "ray", "fastapi"]
FOR_QUANTIZATION = ["bitsandbytes", "accelerate"]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    return Check("python", sys.version_info >= (3, 10), f"{version} (need ≥ 3.10)")


def check_dependencies(precision: str) -> Check:
    needed = REQUIRED + (FOR_QUANTIZATION if precision in ("int8", "nf4", "auto") else [])
    versions, missing = [], []
    for package in needed:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            missing.append(package)
    detail = ", ".join(versions) + (f"; missing: {', '.join(missing)}" if missing else "")
    return Check("dependencies", not missing, detail)


def check_torch(device: str) -> Check:
    import torch

    if device == "cuda":
        name = torch.cuda.get_device_name(0)
        return Check(
            "torch/cuda", True, f"torch {torch.__version__}, CUDA {torch.version.cuda}, {name}"
        )
    return Check("torch/cuda", True, f"torch {torch.__version__}, no CUDA: serving on CPU")


def check_model_and_memory(path: Path, precision: str, device: str) -> list[Check]:
    """Model files complete and loadable (config, tokenizer), and memory for `precision`."""
    try:
        check_checkpoint(path)
        checkpoint = open_checkpoint(path)
    except (ModelNotAvailable, OSError, ValueError) as error:
        return [Check("model files", False, str(error))]
    shards = len(list(path.glob("*.safetensors")) or list(path.glob("*.bin")))
    files = Check(
        "model files", True, f"{path}: {checkpoint.layout}, {shards} shard(s), tokenizer ok"
    )
    shape = model_shape(checkpoint.config)
    if device == "cuda":
        free, where = free_gpu_bytes(), "free GPU memory"
    else:
        import psutil

        free, where = psutil.virtual_memory().available, "available host memory"
    chosen = choose_precision(device, shape, free) if precision == "auto" else precision
    needed = shape.needed_bytes(chosen)
    detail = (
        f"{chosen}{' (auto)' if precision == 'auto' else ''}: needs ≈ {needed / GIB:.1f} GiB "
        f"(weights {shape.weight_bytes(chosen) / GIB:.1f} GiB + KV cache + overhead), "
        f"{where} {free / GIB:.1f} GiB"
    )
    return [files, Check("memory", needed <= free, detail)]


def check_ray(address: str | None) -> Check:
    """GPUs Ray can hand to replicas; only asked of a running cluster (never starts one)."""
    if not address:
        return Check("ray resources", True, "no running cluster given; `serve run` starts one")
    import ray

    try:
        ray.init(address=address, logging_level="ERROR")
        resources = ray.cluster_resources()
    except ConnectionError as error:
        return Check("ray resources", False, f"cannot reach Ray at {address}: {error}")
    finally:
        ray.shutdown()
    detail = f"CPU {resources.get('CPU', 0):g}, GPU {resources.get('GPU', 0):g}"
    return Check("ray resources", True, detail)


def check_port(port: int) -> Check:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as error:
            return Check(f"port {port}", False, f"in use ({error.strerror}); stop it or change it")
    return Check(f"port {port}", True, "free")


def check_task_store(settings: Settings) -> Check:
    """The task store answers (PostgreSQL: connection and password) at a schema this code
    knows; nothing is created or migrated."""
    ok, detail = describe_schema(settings)
    return Check("task store", ok, detail)


def run_checks(
    model_path: Path,
    precision: str,
    device: str,
    port: int,
    ray_address: str | None,
    settings: Settings | None = None,
):
    device = resolve_device(device)
    return [
        check_python(),
        check_torch(device),
        check_dependencies(precision),
        *check_model_and_memory(model_path, precision, device),
        check_ray(ray_address),
        check_port(port),
        check_task_store(settings or Settings()),
    ]


def main(argv: list[str] | None = None) -> int:
    settings = Settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", type=Path, default=Path(settings.model_path))
    parser.add_argument("--precision", default=settings.precision)
    parser.add_argument("--device", default=settings.device)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS"))
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    checks = run_checks(args.model_path, args.precision, args.device, args.port, args.ray_address)
    failed = [check for check in checks if not check.ok]
    if args.json:
        print(json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        width = max(len(check.name) for check in checks)
        for check in checks:
            print(f"{'✔' if check.ok else '✖'} {check.name:<{width}}  {check.detail}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
