"""How much a request may ask of the model, counted in the model's own tokens.

Two budgets: the user's text (prompt + style + system prompt) within `max_prompt_tokens`, and the
whole prompt the model would read (the template of storyboard.prompts.build_messages around that
text) plus `max_new_tokens` within the model's context. Counts come from the model's tokenizer
when its checkpoint is on this machine, loaded once per ingress replica off the event loop; until
then (or without weights) from storyboard.language.estimated_tokens, which errs on the high side.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from deployments.engine.tokenizer import build_encoders, context_length, encode_chat, load_tokenizer
from deployments.storyboard.language import estimated_tokens
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.prompts import build_messages
from serve_app.config import Settings
from serve_app.errors import FieldError

logger = logging.getLogger("ray.serve")

# While a replica's model path holds no tokenizer (not downloaded yet, unloaded), it counts with
# the estimate and looks again this often.
TOKENIZER_RETRY_S = 30.0
# Estimate only: the role marker and line break a chat template puts around each message, and
# the opening and generation prompt (ChatGLM3: [gMASK]sop ... <|assistant|>).
ESTIMATED_TOKENS_PER_MESSAGE = 4
USER_TEXT_FIELDS = ("prompt", "style", "system_prompt")


@dataclass(frozen=True)
class PromptTokens:
    """A request's tokens: each user text field (`body.prompt`, ...), and the whole prompt."""

    fields: dict[str, int]
    rendered: int
    exact: bool  # counted by the model's tokenizer, not estimated

    @property
    def user_text(self) -> int:
        return sum(self.fields.values())


@dataclass(frozen=True)
class _Tokenizer:
    tokenizer: Any
    plain: Any  # deployments.engine.tokenizer.Encoders: field text encoded as text


class PromptCounter:
    """The token counts of one ingress replica: its model's tokenizer, loaded on first use."""

    def __init__(self, model_path: str, clock=time.monotonic):
        self.model_path = model_path
        self._clock = clock
        self._loaded: _Tokenizer | None = None
        self._context: int | None = None
        self._retry_at = 0.0
        self._loading: asyncio.Lock | None = None

    @property
    def context_length(self) -> int | None:
        return self._context

    async def count(self, request: ScriptRequest, system_prompt: str | None) -> PromptTokens:
        loaded = await self._tokenizer()
        texts = {f"body.{name}": getattr(request, name) for name in USER_TEXT_FIELDS}
        texts = {field: text for field, text in texts.items() if text}
        messages = build_messages(request, system_prompt)
        if loaded is None:
            return estimate(texts, messages)
        return PromptTokens(
            fields={field: len(loaded.plain.plain(text)) for field, text in texts.items()},
            rendered=len(encode_chat(loaded.tokenizer, messages)),
            exact=True,
        )

    async def _tokenizer(self) -> _Tokenizer | None:
        if self._loaded is not None or self._clock() < self._retry_at:
            return self._loaded
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:  # one load at a time; the others wait for its outcome
            if self._loaded is None and self._clock() >= self._retry_at:
                await asyncio.to_thread(self._load)
        return self._loaded

    def _load(self) -> None:
        self._context = context_length(self.model_path)
        try:
            tokenizer = load_tokenizer(self.model_path)
            self._loaded = _Tokenizer(tokenizer, build_encoders(tokenizer))
        except Exception as error:  # any failure leaves the estimate in charge, never a 500
            self._retry_at = self._clock() + TOKENIZER_RETRY_S
            logger.info(
                "prompt limits use the token estimate: no tokenizer at the model path (%s); "
                "trying again in %g s",
                error,
                TOKENIZER_RETRY_S,
            )
        else:
            logger.info("prompt limits count with the model's tokenizer")


def estimate(texts: dict[str, str], messages: list[dict[str, str]]) -> PromptTokens:
    template = ESTIMATED_TOKENS_PER_MESSAGE * (len(messages) + 1)
    return PromptTokens(
        fields={field: estimated_tokens(text) for field, text in texts.items()},
        rendered=template + sum(estimated_tokens(m["content"]) for m in messages),
        exact=False,
    )


_counters: dict[str, PromptCounter] = {}


def prompt_counter(model_path: str) -> PromptCounter:
    """This process's (ingress replica's) counter for `model_path`, made once."""
    counter = _counters.get(model_path)
    if counter is None:
        counter = _counters[model_path] = PromptCounter(model_path)
    return counter


async def check_prompt_limits(
    request: ScriptRequest, settings: Settings, counter: PromptCounter | None = None
) -> PromptTokens:
    """The request's token counts; FieldError (→ 422 naming the field) when it breaks a limit."""
    if len(request.prompt) > settings.max_prompt_chars:
        raise FieldError(
            "body.prompt",
            f"is {len(request.prompt)} characters; the limit is {settings.max_prompt_chars}",
        )
    counter = counter or prompt_counter(settings.model_path)
    tokens = await counter.count(request, request.system_prompt or settings.system_prompt)
    check_user_text(tokens, settings.max_prompt_tokens)
    check_context(tokens, settings.max_new_tokens, counter.context_length)
    return tokens


def check_user_text(tokens: PromptTokens, max_prompt_tokens: int) -> None:
    """The user's text over `max_prompt_tokens` → FieldError naming its largest field."""
    if tokens.user_text <= max_prompt_tokens:
        return
    largest = max(tokens.fields, key=lambda field: tokens.fields[field])
    about = "" if tokens.exact else "about "
    parts = ", ".join(f"{field.removeprefix('body.')} {n}" for field, n in tokens.fields.items())
    raise FieldError(
        largest,
        f"the request's text is {about}{tokens.user_text} tokens ({parts}); the limit is "
        f"{max_prompt_tokens}",
    )


def check_context(tokens: PromptTokens, max_new_tokens: int, context: int | None) -> None:
    """The whole prompt plus the generation budget over the model's context → FieldError."""
    if context is None or tokens.rendered + max_new_tokens <= context:
        return
    about = "" if tokens.exact else "about "
    raise FieldError(
        "body.prompt",
        f"makes a model prompt of {about}{tokens.rendered} tokens; with max_new_tokens "
        f"{max_new_tokens} that is {tokens.rendered + max_new_tokens}, over the model's context "
        f"of {context} tokens",
    )
