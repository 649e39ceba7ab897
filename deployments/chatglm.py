"""The GPU-pinned chat deployment: Serve's dynamic batching in front of a chat engine.

It knows nothing about storyboards: messages and sampling in, text out. `num_gpus` comes from
the Serve config (1 in serve_config.yaml, 0 in the CPU profile).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ray import serve

from deployments.engine import GenerationRequest, GenerationResult, ModelNotAvailable
from deployments.engine.static_batching import StaticBatchingEngine
from serve_app.config import BatchingConfig, Settings

logger = logging.getLogger("ray.serve")


@serve.deployment(name="ChatGLM", max_ongoing_requests=64, health_check_period_s=10)
class ChatGLMDeployment:
    def __init__(self, settings: Settings):
        self.engine = StaticBatchingEngine(
            model_path=settings.model_path,
            precision=settings.precision,
            device=settings.device,
            torch_threads=settings.torch_threads,
            wedged_after_s=settings.wedged_after_s,
        )
        self.batching = BatchingConfig.model_validate(settings.batching_user_config())
        try:
            self.engine.start()
        except ModelNotAvailable as error:
            # A replica without weights still starts: every request then gets the fallback.
            logger.warning("LLM not loaded, serving fallback scripts only: %s", error)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Apply batching knobs live (`serve deploy` with a new user_config, no restart)."""
        self.batching = BatchingConfig.model_validate(user_config)
        self.generate_batch.set_max_batch_size(self.batching.max_batch_size)
        self.generate_batch.set_batch_wait_timeout_s(self.batching.batch_wait_timeout_s)
        logger.info("batching: %s", self.batching.model_dump())

    async def chat(self, request: GenerationRequest) -> GenerationResult:
        if not self.engine.loaded:
            raise ModelNotAvailable(self.engine.model_path, self.engine.unavailable_reason)
        return await self.generate_batch(request)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.05)
    async def generate_batch(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        logger.info("generating a batch of %d", len(requests))
        # A worker thread keeps the replica's event loop free to collect the next batch.
        return await asyncio.to_thread(self.engine.generate, requests)

    def status(self) -> dict[str, Any]:
        return {**self.engine.status(), "batching": self.batching.model_dump()}

    def check_health(self) -> None:
        self.engine.check_health()
