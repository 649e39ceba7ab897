"""What engines serving one local checkpoint share: its settings, loading, counters, the report."""

from __future__ import annotations

import os
from typing import Any

import torch

from deployments.engine.base import ChatEngine, EngineCounters
from deployments.engine.loading import LoadedModel, ModelNotAvailable, load_model
from deployments.engine.memory import memory_report
from deployments.engine.quantization import DEFAULT_KV_CACHE_TOKENS


class CheckpointEngine(ChatEngine):
    def __init__(
        self,
        model_path: str,
        precision: str = "auto",
        device: str = "auto",
        torch_threads: int = 0,
        wedged_after_s: float = 600.0,
        allow_downgrade: bool = True,
        kv_cache_tokens: int = DEFAULT_KV_CACHE_TOKENS,
    ):
        """`kv_cache_tokens`: KV cache to plan for, in tokens over all rows of a full batch."""
        self.model_path = model_path
        self.precision = precision
        self.device = device
        self.allow_downgrade = allow_downgrade
        self.wedged_after_s = wedged_after_s
        self.kv_cache_tokens = kv_cache_tokens
        self.torch_threads = cpu_threads(torch_threads, device)
        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        self.counters = EngineCounters()
        self.unavailable_reason: str | None = "not loaded yet"
        self._model: LoadedModel | None = None

    def _load(self) -> LoadedModel:
        """Load the checkpoint; on failure keep the reason (and the path looked at) for status."""
        try:
            return load_model(
                self.model_path,
                self.precision,
                self.device,
                self.allow_downgrade,
                self.kv_cache_tokens,
            )
        except ModelNotAvailable as error:
            self.unavailable_reason = str(error)
            raise

    def wakeup(self) -> None:
        if not self.loaded:
            self.start()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _report(self, **counters: int) -> dict[str, Any]:
        """The status every engine gives (its own counters added); engines add their own keys."""
        loaded = self._model
        report: dict[str, Any] = {
            "model_path": self.model_path,
            "loaded": loaded is not None,
            "reason": self.unavailable_reason,
            "counters": {**self.counters.as_dict(), **counters},
            "torch_threads": torch.get_num_threads(),
            "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
            **memory_report(),
        }
        if loaded is not None:
            report.update(requested_precision=self.precision, **loaded.describe())
        return report


def cpu_threads(torch_threads: int, device: str) -> int:
    """Threads for torch's CPU work, 0 = leave torch's default. Asked for: that many. Unset on
    CPU: every core this process may run on. Not torch's default there: it follows
    OMP_NUM_THREADS, which Ray sets to the replica's `num_cpus` (1 for ChatGLM), so the model
    would compute on one core of a machine that has more. Unset on CUDA: torch's default (the
    GPU does the model's work; replicas sharing a host keep to their share)."""
    if torch_threads:
        return torch_threads
    on_cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    return len(os.sched_getaffinity(0)) if on_cpu else 0
