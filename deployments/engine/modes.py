"""Which engine serves: a setting names one, or `auto` picks the one measured faster."""

from __future__ import annotations

from typing import Literal

import torch

EngineMode = Literal["static", "continuous"]

# The faster engine per device, from scripts/bench_engine.py (BENCHMARKS.md). CPU: static
# batching beat transformers' continuous batching at every batch size on 2 cores. CUDA: not
# measured yet, so static until a GPU run says otherwise.
FASTER_ENGINE: dict[str, EngineMode] = {"cpu": "static", "cuda": "static"}


def resolve_engine(engine: str, device: str, constrained_decoding: bool) -> EngineMode:
    """`auto` → the faster engine on `device`, but never one that cannot constrain decoding
    when the deployment asks for it (only the static engine can)."""
    if engine != "auto":
        return engine  # type: ignore[return-value]
    if constrained_decoding:
        return "static"
    kind = "cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu"
    return FASTER_ENGINE[kind]
