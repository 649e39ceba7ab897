"""Chat engine: loading, precision and batched generation. Imports neither Ray nor serve_app,
so it runs alone on a GPU box (`scripts/bench_engine.py`)."""

from deployments.engine.base import ChatEngine, GenerationRequest, GenerationResult
from deployments.engine.continuous_batching import ContinuousBatchingEngine
from deployments.engine.loading import LoadedModel, ModelNotAvailable, load_model
from deployments.engine.static_batching import StaticBatchingEngine

__all__ = [
    "ChatEngine",
    "ContinuousBatchingEngine",
    "GenerationRequest",
    "GenerationResult",
    "LoadedModel",
    "ModelNotAvailable",
    "StaticBatchingEngine",
    "load_model",
]
