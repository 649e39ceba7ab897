"""Chat engine: loading, precision and batched generation. Imports neither Ray, nor the HTTP side,
nor the storyboard domain, so it runs alone on a GPU box (`scripts/bench_engine.py`); its own
`EngineConfig` is all it is configured with."""

from deployments.engine.base import (
    ChatEngine,
    GenerationRequest,
    GenerationResult,
    RowFailed,
    results_or_raise,
)
from deployments.engine.config import BatchingConfig, EngineConfig
from deployments.engine.continuous_batching import ContinuousBatchingEngine
from deployments.engine.errors import ModelNotAvailable
from deployments.engine.loading import LoadedModel, load_model
from deployments.engine.modes import build_engine
from deployments.engine.static_batching import StaticBatchingEngine
from deployments.engine.tokenizer import context_length, encode_chat, load_tokenizer

__all__ = [
    "BatchingConfig",
    "ChatEngine",
    "ContinuousBatchingEngine",
    "EngineConfig",
    "GenerationRequest",
    "GenerationResult",
    "LoadedModel",
    "ModelNotAvailable",
    "RowFailed",
    "StaticBatchingEngine",
    "build_engine",
    "context_length",
    "encode_chat",
    "load_model",
    "load_tokenizer",
    "results_or_raise",
]
