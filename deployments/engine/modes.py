"""Which engine serves: a setting names one, or `auto` picks the one measured faster."""

from __future__ import annotations

from typing import Literal

import torch

from deployments.engine.base import ChatEngine
from deployments.engine.config import EngineConfig
from deployments.engine.continuous_batching import ContinuousBatchingEngine
from deployments.engine.static_batching import StaticBatchingEngine
from deployments.engine.vllm_engine import VLLMEngine, vllm_installed

EngineMode = Literal["static", "continuous", "vllm"]

# The faster engine per device, from scripts/bench_engine.py (BENCHMARKS.md). CPU: static
# batching beat transformers' continuous batching at every batch size on 2 cores. CUDA: not
# measured yet, so static until a GPU run says otherwise.
FASTER_ENGINE: dict[str, EngineMode] = {"cpu": "static", "cuda": "static"}


def resolve_engine(engine: str, device: str, constrained_decoding: bool) -> EngineMode:
    """`auto` → vLLM on CUDA when it is installed (it schedules continuously, caches prefixes
    and constrains decoding itself); otherwise the faster of ours on `device`, but never one
    that cannot constrain decoding when the deployment asks for it (only static can). On CPU
    vLLM serves only when named: its CPU build lives in a venv of its own (`make setup-vllm`)."""
    if engine != "auto":
        return engine  # type: ignore[return-value]
    on_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if on_cuda and vllm_installed():
        return "vllm"
    if constrained_decoding:
        return "static"
    return FASTER_ENGINE["cuda" if on_cuda else "cpu"]


def build_engine(config: EngineConfig) -> ChatEngine:
    """The engine `config.engine` names (`auto` resolved for its device), not yet started."""
    mode = resolve_engine(config.engine, config.device, config.constrained_decoding)
    if mode == "vllm":
        return VLLMEngine(
            config.model_path,
            precision=config.precision,
            device=config.device,
            max_num_seqs=config.vllm_max_num_seqs,
            request_tokens=config.request_tokens(),
            gpu_memory_utilization=config.gpu_memory_utilization,
            wedged_after_s=config.wedged_after_s,
        )
    common = dict(
        model_path=config.model_path,
        precision=config.precision,
        device=config.device,
        torch_threads=config.torch_threads,
        wedged_after_s=config.wedged_after_s,
        allow_downgrade=config.allow_downgrade,
        kv_cache_tokens=config.kv_cache_tokens(),
    )
    if mode == "static":
        return StaticBatchingEngine(
            **common,
            prefix_cache_entries=config.prefix_cache_entries,
            prefix_cache_min_tokens=config.prefix_cache_min_tokens,
            prefix_cache_max_tokens=config.prefix_cache_max_tokens,
        )
    return ContinuousBatchingEngine(
        **common,
        max_batch_size=config.max_batch_size,
        temperature=config.temperature,
        top_p=config.top_p,
    )
