"""What engines serving one local checkpoint share: its settings, loading, counters, the report."""

from __future__ import annotations

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
        if torch_threads:
            torch.set_num_threads(torch_threads)
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
            **memory_report(),
        }
        if loaded is not None:
            report.update(requested_precision=self.precision, **loaded.describe())
        return report
