"""How one script gets written: build the prompt, ask the LLM, have the script processor parse
the reply, self-repair once, else fall back (the processor's fallback when the replies were
unusable; a local one when the model side is down, failing or past the deadline).

Every path ends in a valid VideoScript; `source` and `fallback_reason` say which path it was.

A task's script is generated through the model's streaming call (`chat_stream`, the same engine
batches as `chat`) when the runner watches it (a ReplyWatcher): each piece of the reply moves
the token count, and each scene the reply completes (storyboard/partial.py, normalized as the
parser will: storyboard/parser.py DraftScenes) is handed to the watcher as it appears.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ray.serve.handle import DeploymentHandle

from deployments.engine import GenerationRequest, ModelNotAvailable
from deployments.engine.base import TextDelta
from deployments.storyboard.constants import LLM_SOURCES
from deployments.storyboard.fallback import fallback_script_json, fallback_template
from deployments.storyboard.parser import DraftScenes
from deployments.storyboard.partial import PartialScenes
from deployments.storyboard.prompts import (
    TEMPLATE_VERSION,
    build_messages,
    build_repair_messages,
    script_json_schema,
)
from serve_app.config import Settings
from serve_app.errors import FieldError
from serve_app.metrics import record_quality, record_script
from serve_app.model_registry import ModelRegistry, UnknownModel
from serve_app.protocol import ScriptRequest, TaskStage
from serve_app.script_cache import ScriptCache, cache_key

logger = logging.getLogger("ray.serve")

MODEL_FIELD = "body.model"


class ScriptPipeline:
    def __init__(
        self,
        chat: ModelRegistry | Mapping[str, DeploymentHandle] | DeploymentHandle,
        processor: DeploymentHandle,
        settings: Settings,
    ):
        # Every served model by id (or the one model's handle: ModelRegistry.of)
        self.models = ModelRegistry.of(chat, settings)
        self.chat = self.models.handle(None)  # the default model's
        self.processor = processor
        self.settings = settings
        self.sources = LLM_SOURCES if settings.self_repair else LLM_SOURCES[:1]
        self.generation_timeout_s = settings.generation_timeout_s
        # Per model id: after the model said it is unavailable, skip it until then (and why).
        self._model_down: dict[str, tuple[float, str]] = {}
        # Only greedy decoding gives the same script twice, so only then is a cached one right
        # (per model: its own temperature).
        self.cache = (
            ScriptCache(settings.cache_max_entries, settings.cache_ttl_s)
            if settings.cache_enabled
            and any(entry.temperature == 0 for entry in self.models.entries.values())
            else None
        )

    def named(self, request: ScriptRequest) -> ScriptRequest:
        """`request` naming the model that writes it (the default when it names none), as the
        task stores it; FieldError naming body.model when that model is not served."""
        try:
            model_id = self.models.resolve(request.model)
        except UnknownModel as error:
            raise FieldError(MODEL_FIELD, str(error)) from None
        return (
            request if request.model == model_id else request.model_copy(update={"model": model_id})
        )

    def _down_reason(self, model_id: str | None) -> str | None:
        """Why the model is known to be down (within model_recheck_s of it saying so), or None."""
        until, reason = self._model_down.get(model_id or self.models.default_id, (0.0, ""))
        return reason if time.monotonic() < until else None

    def _mark_down(self, model_id: str | None, reason: str) -> None:
        until = time.monotonic() + self.settings.model_recheck_s
        self._model_down[model_id or self.models.default_id] = (until, reason)

    def _cacheable(self, request: ScriptRequest) -> bool:
        if self.cache is None:
            return False
        entry = self.models.entries.get(request.model or self.models.default_id)
        return entry is not None and entry.temperature == 0

    def script_at_hand(self, request: ScriptRequest) -> dict[str, Any] | None:
        """The outcome when no remote call is needed — a cached script, or the fallback while
        the model is known to be down — else None (then `write_script`)."""
        at_hand = self._script_at_hand(request)
        if at_hand is not None:
            record_script(at_hand)
            record_quality(request, at_hand)
        return at_hand

    def _script_at_hand(self, request: ScriptRequest) -> dict[str, Any] | None:
        if self._cacheable(request):
            cached = self.cache.get(self._cache_key(request))
            if cached is not None:
                return {**cached, "generation_ms": 0.0}
        down = self._down_reason(request.model)
        if down is not None:
            # Two calls to learn that again would cost ~15x the 0.2 ms the fallback takes.
            return fallback_outcome(request, None, down, LLMProgress())
        return None

    async def write_script(
        self,
        request: ScriptRequest,
        on_stage: StageCallback | None = None,
        watcher: ReplyWatcher | None = None,
    ) -> dict[str, Any]:
        """The outcome the task store keeps (script, source, fallback_reason, timings), from the
        model when it gives a valid script, else from the fallback. `on_stage` hears each
        stage as it starts (generating, parsing, repairing, writing_fallback); a `watcher`
        hears the stages too, and the reply as it is generated (tokens, completed scenes)."""
        if watcher is not None:
            on_stage = watcher.enter
        written = await self._write_script(request, on_stage or _ignore_stage, watcher)
        if self._cacheable(request) and written["source"] != "fallback":
            self.cache.put(self._cache_key(request), written)  # a fallback may be an outage
        record_script(written)
        record_quality(request, written)
        return written

    async def model_reply(
        self,
        messages: list[dict[str, str]],
        json_schema: dict[str, Any] | None,
        model: str | None = None,
    ) -> str:
        """One reply of `model` (none = the default) to `messages` (held to `json_schema` when
        its constrained decoding is on), within the generation deadline. ModelDown when the
        model is known to be down, says so or is no longer served; TimeoutError past the
        deadline; other failures as they come."""
        down = self._down_reason(model)
        if down is not None:
            raise ModelDown(down)
        try:
            config = self.models.entry(model)
        except UnknownModel as error:
            raise ModelDown(f"model_unavailable: {error}") from None
        generation = GenerationRequest(
            messages=messages,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            top_p=config.top_p,
            json_schema=json_schema if config.constrained_decoding else None,
        )
        try:
            reply = await asyncio.wait_for(self._chat(generation, model), self.generation_timeout_s)
        except ModelNotAvailable as error:
            self._mark_down(model, f"model_unavailable: {error.reason}")
            raise ModelDown(f"model_unavailable: {error.reason}") from None
        return reply.text

    def cache_stats(self) -> dict[str, Any] | None:
        return self.cache.stats() if self.cache else None

    def _cache_key(self, request: ScriptRequest) -> str:
        config = self.models.entry(request.model)  # the request names its model (its id too)
        return cache_key(
            request,
            model=config.model_path,
            template_version=TEMPLATE_VERSION,
            sampling={
                "max_new_tokens": config.max_new_tokens,
                "constrained_decoding": config.constrained_decoding,
                "system_prompt": self.settings.system_prompt,
            },
        )

    async def _write_script(
        self, request: ScriptRequest, on_stage: StageCallback, watcher: ReplyWatcher | None
    ) -> dict[str, Any]:
        progress = LLMProgress()
        try:
            # One deadline over the whole LLM path: a hung processor must not hold a task either.
            return await asyncio.wait_for(
                self._ask_the_model(request, progress, on_stage, watcher),
                self.generation_timeout_s,
            )
        except TimeoutError:
            reason = f"timeout: no valid LLM script within {self.generation_timeout_s:g} s"
        except UnusableReplies as error:
            on_stage(TaskStage.WRITING_FALLBACK)
            return fallback_outcome(request, error.fallback, f"parse_failed: {error}", progress)
        except ModelNotAvailable as error:
            reason = f"model_unavailable: {error.reason}"
            self._mark_down(request.model, reason)
        except UnknownModel as error:  # accepted for a model a redeploy has removed since
            reason = f"model_unavailable: {error}"
        except Exception as error:
            logger.warning("LLM path failed, using the fallback: %r", error)
            reason = f"generation_error: {type(error).__name__}: {error}"[:500]
        # Built here: the model side is what failed, and it takes ~0.3 ms (1.5 ms for a
        # 2000-character prompt), less than a call.
        on_stage(TaskStage.WRITING_FALLBACK)
        return fallback_outcome(request, None, reason, progress)

    async def _ask_the_model(
        self,
        request: ScriptRequest,
        progress: LLMProgress,
        on_stage: StageCallback,
        watcher: ReplyWatcher | None,
    ) -> dict:
        """The model's script, after at most one repair turn; UnusableReplies otherwise."""
        system_prompt = request.system_prompt or self.settings.system_prompt  # the request's wins
        generation = self._generation_request(request, build_messages(request, system_prompt))
        for attempt, source in enumerate(self.sources):
            on_stage(TaskStage.GENERATING if attempt == 0 else TaskStage.REPAIRING)
            started = time.perf_counter()
            if watcher is None:
                reply = await self._chat(generation, request.model)
            else:
                feed = ReplyFeed(watcher, request, generation.max_new_tokens)
                reply = await self._chat_streamed(generation, feed, request.model)
                # the exact count (tokens decoding to no text come in no piece)
                watcher.tokens(reply.completion_tokens, generation.max_new_tokens)
            progress.generation_s += time.perf_counter() - started
            last_attempt = attempt == len(self.sources) - 1
            on_stage(TaskStage.PARSING)
            parsed = await self.processor.parse.remote(request, reply.text, last_attempt)
            if "script" in parsed:
                return outcome(
                    parsed["script"],
                    source,
                    None,
                    progress.parse_failures,
                    progress.generation_s,
                )
            progress.parse_failures += 1
            if last_attempt:
                raise UnusableReplies(parsed["problem"], parsed["fallback"])
            messages = build_repair_messages(request, reply.text, parsed["problem"], system_prompt)
            generation = self._generation_request(request, messages)
        raise AssertionError("self.sources is never empty")

    def _generation_request(
        self, request: ScriptRequest, messages: list[dict[str, str]]
    ) -> GenerationRequest:
        """A chat request for the request's model, with that model's sampling settings; built
        here, not remotely: it takes ~15 µs."""
        config = self.models.entry(request.model)
        return GenerationRequest(
            messages=messages,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            top_p=config.top_p,
            json_schema=script_json_schema(request) if config.constrained_decoding else None,
            ignore_eos=self.settings.bench_ignore_eos,
        )

    async def _chat(self, generation: GenerationRequest, model: str | None = None) -> Any:
        """One chat call to `model` (none = the default); when the deadline cancels it, it is
        cancelled in Serve too (and never reaches the engine if it has not started:
        deployments/engine_feeder.py)."""
        response = self.models.handle(model).chat.remote(generation)
        try:
            return await response
        except asyncio.CancelledError:
            response.cancel()
            raise

    async def _chat_streamed(
        self,
        generation: GenerationRequest,
        feed: Callable[[TextDelta], None],
        model: str | None = None,
    ) -> Any:
        """`_chat` through the streaming call: `feed` hears each piece of the reply; the
        result (whose text is the pieces' concatenation) as `_chat` gives it."""
        # pieces at most every half progress interval: each one is a Serve message, and the
        # reporter writes at most one per interval (BENCHMARKS.md: per piece cost 0.5x tok/s)
        pieces = (
            self.models.handle(model)
            .options(stream=True)
            .chat_stream.remote(generation, self.settings.task_progress_interval_s / 2)
        )
        result = None
        try:
            async for item in pieces:
                if isinstance(item, TextDelta):
                    feed(item)
                else:
                    result = item
        except asyncio.CancelledError:
            pieces.cancel()  # the row stops at its next token
            raise
        if result is None:
            raise RuntimeError("the model's stream ended without a result")
        return result


StageCallback = Callable[[TaskStage], None]


class ReplyWatcher(Protocol):
    """Who follows a task's generation (serve_app/task_progress.py ProgressReporter)."""

    def enter(self, stage: TaskStage) -> None: ...

    def tokens(self, generated_in_stage: int, token_budget: int) -> None: ...

    def scene(self, scene: dict[str, Any]) -> None: ...


class ReplyFeed:
    """One reply's pieces → the watcher: the token count, and each scene once it is complete
    (normalized as the parser will; its duration is the model's until the script is whole)."""

    def __init__(self, watcher: ReplyWatcher, request: ScriptRequest, token_budget: int):
        self.watcher = watcher
        self.token_budget = token_budget
        self.partial = PartialScenes()
        self.draft = DraftScenes(request)

    def __call__(self, delta: TextDelta) -> None:
        self.watcher.tokens(delta.completion_tokens, self.token_budget)
        for raw in self.partial.feed(delta.text):
            scene = self.draft.add(raw)
            if scene is not None:
                self.watcher.scene(scene.model_dump(mode="json"))


def _ignore_stage(stage: TaskStage) -> None:
    pass


class ModelDown(Exception):
    """No model can answer now; the message says why (`model_unavailable: ...`)."""


class UnusableReplies(Exception):
    """Every reply the model gave failed to parse; the message is the last problem, `fallback`
    the script the processor built instead."""

    def __init__(self, problem: str, fallback: dict[str, Any]):
        super().__init__(problem)
        self.fallback = fallback


@dataclass
class LLMProgress:
    """What the LLM path spent, kept when it ends in the fallback."""

    generation_s: float = 0.0
    parse_failures: int = 0


def outcome(
    script: dict[str, Any],
    source: str,
    fallback_reason: str | None,
    parse_failures: int,
    generation_s: float,
    fallback_template: str | None = None,
) -> dict[str, Any]:
    return {
        "script": script,
        "source": source,
        "fallback_reason": fallback_reason,
        "parse_failures": parse_failures,
        "generation_ms": round(generation_s * 1000, 1),
        "fallback_template": fallback_template,
    }


def fallback_outcome(
    request: ScriptRequest,
    script: dict[str, Any] | None,
    reason: str,
    progress: LLMProgress,
) -> dict[str, Any]:
    """The fallback's script for `request` (`script` when the processor already wrote it)."""
    return outcome(
        script if script is not None else fallback_script_json(request),
        "fallback",
        reason,
        progress.parse_failures,
        progress.generation_s,
        fallback_template(request),
    )
