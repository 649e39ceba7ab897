"""How one script gets written: ask the LLM, parse, self-repair once, else fall back.

Every path ends in a valid VideoScript; `source` and `fallback_reason` say which path it was.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ray.serve.handle import DeploymentHandle

from deployments.engine import ModelNotAvailable
from deployments.fallback import build_fallback_script
from deployments.prompts import TEMPLATE_VERSION
from serve_app.config import Settings
from serve_app.protocol import ScriptRequest
from serve_app.script_cache import ScriptCache, cache_key

logger = logging.getLogger("ray.serve")

LLM_ATTEMPTS = ("llm", "llm_repaired")


class ScriptPipeline:
    def __init__(self, chat: DeploymentHandle, processor: DeploymentHandle, settings: Settings):
        self.chat = chat
        self.processor = processor
        self.settings = settings
        self.sources = LLM_ATTEMPTS if settings.self_repair else LLM_ATTEMPTS[:1]
        self.generation_timeout_s = settings.generation_timeout_s
        # After the model said it is unavailable, skip the model side until this moment.
        self._model_down_until = 0.0
        self._model_down_reason = ""
        # Only greedy decoding gives the same script twice, so only then is a cached one right.
        self.cache = (
            ScriptCache(settings.cache_max_entries, settings.cache_ttl_s)
            if settings.cache_enabled and settings.temperature == 0
            else None
        )

    async def write_script(self, request: ScriptRequest) -> dict[str, Any]:
        """The outcome the task store keeps: script, source, fallback_reason, timings."""
        if self.cache is None:
            return await self._write_script(request)
        key = self._cache_key(request)
        cached = self.cache.get(key)
        if cached is not None:
            return {**cached, "generation_ms": 0.0}
        written = await self._write_script(request)
        if written["source"] != "fallback":  # a fallback may be an outage: ask the model again
            self.cache.put(key, written)
        return written

    def cache_stats(self) -> dict[str, Any] | None:
        return self.cache.stats() if self.cache else None

    def _cache_key(self, request: ScriptRequest) -> str:
        settings = self.settings
        return cache_key(
            request,
            model=settings.model_path,
            template_version=TEMPLATE_VERSION,
            sampling={
                "max_new_tokens": settings.max_new_tokens,
                "constrained_decoding": settings.constrained_decoding,
                "system_prompt": settings.system_prompt,
            },
        )

    async def _write_script(self, request: ScriptRequest) -> dict[str, Any]:
        if time.monotonic() < self._model_down_until:
            # Known to be down: write the fallback here; two calls to learn that again and a
            # third to the processor would cost ~15x the 0.2 ms the fallback takes.
            script = build_fallback_script(request).model_dump(mode="json")
            return outcome(script, "fallback", self._model_down_reason, 0, 0.0)
        generation_s = 0.0
        parse_failures = 0
        deadline = time.monotonic() + self.generation_timeout_s
        try:
            generation = await self.processor.prepare.remote(request)
            for source in self.sources:
                started = time.perf_counter()
                reply = await self._chat_before(deadline, generation)
                generation_s += time.perf_counter() - started
                parsed = await self.processor.parse.remote(request, reply.text)
                if "script" in parsed:
                    return outcome(parsed["script"], source, None, parse_failures, generation_s)
                parse_failures += 1
                generation = await self.processor.prepare_repair.remote(
                    request, reply.text, parsed["problem"]
                )
            reason = f"parse_failed: {parsed['problem']}"
        except TimeoutError:
            reason = f"timeout: no valid LLM script within {self.generation_timeout_s:g} s"
        except ModelNotAvailable as error:
            reason = f"model_unavailable: {error.reason}"
            self._model_down_until = time.monotonic() + self.settings.model_recheck_s
            self._model_down_reason = reason
        except Exception as error:
            logger.warning("LLM path failed, using the fallback: %r", error)
            reason = f"generation_error: {type(error).__name__}: {error}"[:500]
        script = await self._fallback(request)
        return outcome(script, "fallback", reason, parse_failures, generation_s)

    async def _chat_before(self, deadline: float, generation: Any) -> Any:
        """One chat call that must answer by `deadline`; otherwise it is cancelled in Serve
        (dropped from the batch queue if it has not started) and TimeoutError is raised."""
        response = self.chat.chat.remote(generation)
        try:
            return await asyncio.wait_for(response, max(0.0, deadline - time.monotonic()))
        except (TimeoutError, asyncio.CancelledError):
            response.cancel()
            raise

    async def _fallback(self, request: ScriptRequest) -> dict[str, Any]:
        try:
            return await self.processor.fallback.remote(request)
        except Exception as error:
            # The processor replica is down: the fallback is pure Python, so write it here.
            logger.warning("script processor unreachable, writing the fallback locally: %r", error)
            return build_fallback_script(request).model_dump(mode="json")


def outcome(
    script: dict[str, Any],
    source: str,
    fallback_reason: str | None,
    parse_failures: int,
    generation_s: float,
) -> dict[str, Any]:
    return {
        "script": script,
        "source": source,
        "fallback_reason": fallback_reason,
        "parse_failures": parse_failures,
        "generation_ms": round(generation_s * 1000, 1),
    }
