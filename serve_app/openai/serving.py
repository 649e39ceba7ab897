"""The /v1 logic: OpenAI requests → the ChatGLM deployment's `chat` / `chat_stream` (the same
replicas, batches and engine as the storyboard tasks) → OpenAI responses and SSE chunks.

A streamed completion waits for its first piece of text before the response starts, so every
failure that comes before any text (model not loaded, prompt too long, overload) is a proper
status code; a failure after that ends the stream with an `error` event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle

from deployments.engine import GenerationRequest, GenerationResult, ModelNotAvailable
from deployments.engine.base import PromptTooLong, RequestCancelled, RowFailed, TextDelta
from serve_app.config import Settings
from serve_app.model_registry import ModelRegistry
from serve_app.openai.errors import OpenAIError
from serve_app.openai.protocol import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    JsonObjectFormat,
    JsonSchemaFormat,
    ModelCard,
    ModelList,
    Usage,
)

logger = logging.getLogger("ray.serve")

OWNED_BY = "video-script-serve"
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
JSON_OBJECT_SCHEMA = {"type": "object"}


class OpenAIServing:
    """One ingress replica's /v1 service."""

    def __init__(
        self,
        chat: ModelRegistry | Mapping[str, DeploymentHandle] | DeploymentHandle,
        settings: Settings,
    ):
        self.models_served = ModelRegistry.of(chat, settings)  # every model, by id
        self.settings = settings
        self.model_id = self.models_served.default_id
        self.created = {
            model_id: checkpoint_time(entry.model_path)
            for model_id, entry in self.models_served.entries.items()
        }
        self.max_ongoing = settings.openai_max_ongoing_requests
        self.ongoing = 0

    # Models ------------------------------------------------------------------------------------
    def models(self) -> ModelList:
        return ModelList(data=[self.card(model_id) for model_id in self.models_served.ids()])

    def model(self, model_id: str) -> ModelCard:
        self.check_model(model_id, param=None)
        return self.card(model_id)

    def card(self, model_id: str) -> ModelCard:
        return ModelCard(id=model_id, created=self.created[model_id], owned_by=OWNED_BY)

    def check_model(self, model_id: str, param: str | None = "model") -> None:
        if model_id not in self.models_served.entries:
            served = ", ".join(f"`{served}`" for served in self.models_served.ids())
            raise OpenAIError(
                404,
                f"The model `{model_id}` does not exist; this service serves {served}",
                param,
                "model_not_found",
            )

    # Chat completions --------------------------------------------------------------------------
    async def complete(self, body: ChatCompletionRequest) -> ChatCompletion:
        generation = self.generation_request(body)
        with self.slot():
            response = self.models_served.handle(body.model).chat.remote(generation)
            try:
                result = await response
            except asyncio.CancelledError:  # the client went away: the engine stops the row
                response.cancel()
                raise
            except Exception as error:
                raise as_openai_error(error, self.settings) from None
        return ChatCompletion(
            id=completion_id(),
            created=int(time.time()),
            model=body.model,
            choices=[
                Choice(
                    message=AssistantMessage(content=result.text),
                    finish_reason=result.finish_reason,
                )
            ],
            usage=usage(result),
        )

    async def stream(self, body: ChatCompletionRequest) -> AsyncIterator[str]:
        """The SSE events of a streamed completion, once its first piece of text (or its
        whole result) is there; raises OpenAIError when it fails before that."""
        generation = self.generation_request(body)
        slot = self.slot()
        slot.__enter__()
        chat = self.models_served.handle(body.model)
        pieces = chat.options(stream=True).chat_stream.remote(generation)
        try:
            first = await anext(pieces)
        except BaseException as error:
            pieces.cancel()
            slot.__exit__(None, None, None)
            if isinstance(error, Exception):
                raise as_openai_error(error, self.settings) from None
            raise
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return self._events(first, pieces, slot, include_usage, body.model)

    async def _events(
        self,
        first: TextDelta | GenerationResult,
        pieces,
        slot: Slot,
        include_usage: bool,
        model_id: str,
    ) -> AsyncIterator[str]:
        chunk = ChunkFactory(completion_id(), int(time.time()), model_id, include_usage)
        finished = False
        try:
            yield chunk.event(Delta(role="assistant", content=""))
            item = first
            while isinstance(item, TextDelta):
                yield chunk.event(Delta(content=item.text))
                item = await anext(pieces)
            result: GenerationResult = item
            yield chunk.event(Delta(), finish_reason=result.finish_reason)
            if include_usage:
                yield chunk.usage_event(usage(result))
            yield "data: [DONE]\n\n"
            finished = True
        except Exception as error:  # after the first piece: the status is sent already
            shaped = as_openai_error(error, self.settings)
            logger.warning("a /v1 stream failed after it started: %s", shaped.message)
            yield sse(shaped.body().model_dump(mode="json"))
        finally:
            if not finished:
                pieces.cancel()  # the client went away or it failed: the row stops
            slot.__exit__(None, None, None)

    def generation_request(self, body: ChatCompletionRequest) -> GenerationRequest:
        """The engine's request for `body` (404 for another model; 400 naming the parameter
        the engine could not follow)."""
        self.check_model(body.model)
        temperature = body.temperature if body.top_p > 0 else 0.0
        return GenerationRequest(
            messages=[{"role": ROLES[m.role], "content": m.text()} for m in body.messages],
            max_new_tokens=body.token_budget or self.models_served.entry(body.model).max_new_tokens,
            temperature=temperature,
            top_p=body.top_p if temperature > 0 else 1.0,
            json_schema=response_schema(body),
            stop=body.stop_sequences,
            seed=body.seed,
        )

    def slot(self) -> Slot:
        if self.ongoing >= self.max_ongoing:
            raise OpenAIError(
                429,
                f"this replica already serves {self.max_ongoing} /v1 completions "
                "(openai_max_ongoing_requests); retry later",
                None,
                "rate_limit_exceeded",
                self.settings.overload_retry_after_s,
            )
        return Slot(self)


class Slot:
    """One of the replica's openai_max_ongoing_requests, held while a completion runs."""

    def __init__(self, serving: OpenAIServing):
        self.serving = serving
        self.held = False

    def __enter__(self) -> Slot:
        self.serving.ongoing += 1
        self.held = True
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.held:
            self.held = False
            self.serving.ongoing -= 1


class ChunkFactory:
    def __init__(self, completion: str, created: int, model: str, include_usage: bool):
        self.common = {"id": completion, "created": created, "model": model}
        self.include_usage = include_usage

    def event(self, delta: Delta, finish_reason: str | None = None) -> str:
        chunk = ChatCompletionChunk(
            **self.common, choices=[ChunkChoice(delta=delta, finish_reason=finish_reason)]
        )
        return sse(self._dump(chunk))

    def usage_event(self, counts: Usage) -> str:
        return sse(self._dump(ChatCompletionChunk(**self.common, choices=[], usage=counts)))

    def _dump(self, chunk: ChatCompletionChunk) -> dict[str, Any]:
        dumped = chunk.model_dump(mode="json")
        if not self.include_usage:
            dumped.pop("usage")
        return dumped


def sse(data: dict[str, Any]) -> str:
    """One server-sent event. Written here rather than with an SSE library: OpenAI's stream is
    only `data:` lines of one-line JSON, no ids, event names or retry fields."""
    return f"data: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


def response_schema(body: ChatCompletionRequest) -> dict[str, Any] | None:
    """The JSON schema decoding is held to; a schema the grammar compiler refuses is a 400."""
    fmt = body.response_format
    if isinstance(fmt, JsonObjectFormat):
        return JSON_OBJECT_SCHEMA
    if not isinstance(fmt, JsonSchemaFormat):
        return None
    schema = fmt.json_schema.schema_
    import xgrammar  # here: the ingress loads it only once a request asks for a schema

    try:
        xgrammar.Grammar.from_json_schema(json.dumps(schema), any_whitespace=False)
    except Exception as error:
        raise OpenAIError(
            400,
            f"response_format.json_schema.schema cannot be followed: {error}"[:500],
            "response_format.json_schema.schema",
            "invalid_schema",
        ) from None
    return schema


def as_openai_error(error: BaseException, settings: Settings) -> OpenAIError:
    """What a failed chat call means for the client."""
    retry = settings.overload_retry_after_s
    if isinstance(error, OpenAIError):
        return error
    if isinstance(error, ModelNotAvailable):
        message = f"the model is not loaded: {getattr(error, 'reason', None) or first_line(error)}"
        return OpenAIError(503, message, None, "model_not_loaded", retry)
    if isinstance(error, BackPressureError):
        message = "the model's queue is full; retry later"
        return OpenAIError(503, message, None, "overloaded", retry)
    if isinstance(error, PromptTooLong):
        return OpenAIError(400, first_line(error), "messages", "context_length_exceeded")
    if isinstance(error, RequestCancelled):
        return OpenAIError(503, first_line(error), None, "cancelled", retry)
    if isinstance(error, RowFailed):  # e.g. out of memory even alone
        return OpenAIError(503, first_line(error), None, "generation_failed", retry)
    if isinstance(error, ValueError):  # the engine cannot run this request (its kind)
        message = first_line(error)
        param = "response_format" if "json_schema" in message else "temperature"
        return OpenAIError(400, message, param, "unsupported_by_engine")
    logger.warning("a /v1 completion failed: %r", error)
    return OpenAIError(503, f"generation failed: {type(error).__name__}", None, None, retry)


def first_line(error: BaseException) -> str:
    """The error's own message (Ray re-raises a replica's error with the traceback around it;
    its `cause` is the original)."""
    cause = getattr(error, "cause", None)
    text = str(cause if isinstance(cause, BaseException) else error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:500]


def usage(result: GenerationResult) -> Usage:
    return Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
    )


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def checkpoint_time(model_path: str) -> int:
    """When the checkpoint was written (its config.json), else now."""
    try:
        return int((Path(model_path) / "config.json").stat().st_mtime)
    except OSError:
        return int(time.time())
