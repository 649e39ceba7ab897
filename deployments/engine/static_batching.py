"""Static batching: one left-padded `generate()` call per batch that @serve.batch hands us."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from deployments.engine.base import (
    CancelCheck,
    GenerationRequest,
    GenerationResult,
    PromptTooLong,
    RequestCancelled,
    RowFailed,
    RowOutcome,
    TokenSink,
    never_cancelled,
    with_first_token,
)
from deployments.engine.checkpoint_engine import CheckpointEngine
from deployments.engine.loading import ModelNotAvailable, free_memory
from deployments.engine.prefix_cache import (
    CachedPrefix,
    PrefixCache,
    cache_argument,
    layout_batch,
)
from deployments.engine.streaming import GuardedSink, RowText
from deployments.engine.tokenizer import encode_chat

logger = logging.getLogger(__name__)


class RowTokenBudget(StoppingCriteria):
    """Stops each row at its own max_new_tokens, so one batch can mix budgets."""

    def __init__(self, prompt_length: int, budgets: list[int], device: str):
        self.prompt_length = prompt_length
        self.budgets = torch.tensor(budgets, device=device)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        return (input_ids.shape[1] - self.prompt_length) >= self.budgets


class RowCancellation(StoppingCriteria):
    """Stops each row whose caller has gone, at its next token, and notes how far it got."""

    def __init__(self, prompt_length: int, checks: list[CancelCheck], device: str):
        self.prompt_length = prompt_length
        self.checks = checks
        self.device = device
        self.stopped_at: dict[int, int] = {}

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        generated = input_ids.shape[1] - self.prompt_length
        for row, check in enumerate(self.checks):
            if row not in self.stopped_at and check():
                self.stopped_at[row] = generated
        stopped = [row in self.stopped_at for row in range(len(self.checks))]
        return torch.tensor(stopped, device=self.device)


class FirstTokenClock(StoppingCriteria):
    """Notes when the call's first token came (every row gets its first token in that step);
    stops nothing."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        if self.at is None:
            self.at = time.perf_counter()
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


class RowStreams(StoppingCriteria):
    """Feeds each tracked row's new token to its RowText (streaming its text, finding its stop
    strings) and stops a row once a stop string is complete. Rows without a tracker (no sink,
    no stop strings) cost nothing here."""

    def __init__(
        self, trackers: list[RowText | None], budgets: list[int], stop_ids: set[int], device: str
    ):
        self.trackers = trackers
        self.budgets = budgets
        self.stop_ids = stop_ids
        self.device = device
        self.ended: dict[int, str] = {}  # row → "stop" (stop token or string) or "length"
        self.tracked = [row for row, tracker in enumerate(trackers) if tracker is not None]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        last = input_ids[:, -1].tolist()
        stopped = [False] * len(self.trackers)
        for row in self.tracked:
            if row in self.ended:
                continue
            tracker = self.trackers[row]
            if last[row] in self.stop_ids:
                self.ended[row] = "stop"
            elif tracker.add(last[row]):
                self.ended[row] = "stop"
                stopped[row] = True
            elif len(tracker.tokens) >= self.budgets[row]:
                self.ended[row] = "length"
        return torch.tensor(stopped, device=self.device)

    def result(self, row: int, prompt_tokens: int) -> GenerationResult:
        return self.trackers[row].finish(prompt_tokens, self.ended.get(row, "length"))


class StaticBatchingEngine(CheckpointEngine):
    def __init__(
        self,
        model_path: str,
        *checkpoint_args: Any,
        prefix_cache_entries: int = 8,
        prefix_cache_min_tokens: int = 64,
        prefix_cache_max_tokens: int = 1024,
        **checkpoint_kwargs: Any,
    ):
        """Checkpoint arguments as `CheckpointEngine` takes them; prefix-cache knobs by name."""
        super().__init__(model_path, *checkpoint_args, **checkpoint_kwargs)
        self.oom_batch_splits = 0
        self.prefix_cache = PrefixCache(
            prefix_cache_entries, prefix_cache_min_tokens, prefix_cache_max_tokens
        )
        self._generate_lock = threading.Lock()
        self._busy_since: float | None = None

    # Lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.prefix_cache.clear()  # its KV belongs to the model it was computed with
        self._model = self._load()
        self.unavailable_reason = None

    def sleep(self) -> None:
        with self._generate_lock:
            self._model = None
            self.prefix_cache.clear()
            self.unavailable_reason = "unloaded"
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def check_health(self) -> None:
        busy_since = self._busy_since
        if busy_since is not None and time.monotonic() - busy_since > self.wedged_after_s:
            raise RuntimeError(
                f"generate() has run for {time.monotonic() - busy_since:.0f} s "
                f"(limit {self.wedged_after_s:.0f} s): replica is wedged"
            )

    # Work ------------------------------------------------------------------------------------
    def generate(
        self,
        requests: list[GenerationRequest],
        cancelled: Sequence[CancelCheck] | None = None,
        sinks: Sequence[TokenSink | None] | None = None,
    ) -> list[RowOutcome]:
        checks = list(cancelled) if cancelled is not None else [never_cancelled] * len(requests)
        guarded = [
            GuardedSink(s) if s is not None else None for s in sinks or [None] * len(requests)
        ]
        outcomes: dict[int, RowOutcome] = {}
        with self._generate_lock:
            if self._model is None:
                raise ModelNotAvailable(self.model_path, self.unavailable_reason or "not loaded")
            started = self._busy_since = time.monotonic()
            try:
                rows = self._rows(requests, checks, guarded, outcomes)
                for positions in group_rows(rows):
                    group = [rows[p] for p in positions]
                    for row, outcome in zip(group, self._generate_rows(group), strict=True):
                        outcomes[row.index] = outcome
            finally:
                self._busy_since = None
        ordered = [outcomes[i] for i in range(len(requests))]
        self.counters.failures += sum(
            isinstance(o, RowFailed) and not isinstance(o, RequestCancelled) for o in ordered
        )
        generated = sum(o.completion_tokens for o in ordered if isinstance(o, GenerationResult))
        self.counters.record_batch(len(requests), generated, time.monotonic() - started)
        return ordered

    def _rows(
        self,
        requests: list[GenerationRequest],
        checks: list[CancelCheck],
        sinks: list[GuardedSink | None],
        outcomes: dict[int, RowOutcome],
    ) -> list[Row]:
        """The requests that can run, each with its prompt tokens, its budget (cut to what the
        context leaves) and the cached prefix it starts with; the others' RowFailed go into
        `outcomes`."""
        loaded = self._model
        context = context_positions(loaded.model)
        runnable: list[tuple[int, GenerationRequest, list[int], int]] = []
        for index, request in enumerate(requests):
            try:
                prompt = encode_chat(loaded.tokenizer, request.messages)
            except Exception as error:  # e.g. a template that refuses these messages
                outcomes[index] = RowFailed(f"cannot encode the prompt: {error!r}"[:500])
                continue
            budget = min(request.max_new_tokens, context - len(prompt))
            if budget < 1:
                outcomes[index] = PromptTooLong(
                    f"the prompt is {len(prompt)} tokens; the model's context is {context}: "
                    "no room to generate"
                )
                continue
            runnable.append((index, request, prompt, budget))
        prompts = [prompt for _, _, prompt, _ in runnable]
        try:
            prefixes = self.prefix_cache.assign(prompts, loaded.model)
        except torch.OutOfMemoryError:
            prefixes = None
        if prefixes is None:  # no room to prefill a new prefix: these rows prefill in full
            free_memory()  # outside `except`, so the failed attempt's tensors are unreachable
            prefixes = [None] * len(runnable)
        return [
            Row(index, request, prompt, prefix, budget, checks[index], sinks[index])
            for (index, request, prompt, budget), prefix in zip(runnable, prefixes, strict=True)
        ]

    def _generate_rows(self, group: list[Row]) -> list[RowOutcome]:
        """One generate() call for the group. On out-of-memory each half runs on its own; on any
        other error each row runs alone, so that only the row that fails alone fails."""
        live = [row for row in group if not row.cancelled()]
        if len(live) < len(group):  # cancelled while waiting for a retry: not run again
            outcomes = dict(zip(map(id, live), self._generate_rows(live), strict=True))
            return [outcomes.get(id(row), RequestCancelled(0)) for row in group]
        if not group:
            return []
        try:
            return self._generate_group(group)
        except torch.OutOfMemoryError as error:
            out_of_memory, failure = True, first_line(error)
        except Exception as error:
            out_of_memory, failure = False, f"{type(error).__name__}: {error}"[:500]
        free_memory()  # outside `except`, so the failed attempt's tensors are unreachable
        streamed = [row for row in group if row.sink is not None and row.sink.delivered]
        if streamed:  # their clients have part of a reply: never generated (and sent) again
            again = [row for row in group if row not in streamed]
            retried = dict(zip(map(id, again), self._generate_rows(again), strict=True))
            failed = RowFailed(f"failed after streaming part of the reply: {failure}")
            return [retried.get(id(row), failed) for row in group]
        if len(group) == 1:
            what = "out of memory generating this request alone" if out_of_memory else "failed"
            logger.warning("one request %s: %s", what, failure)
            return [RowFailed(f"{what}: {failure}")]
        if not out_of_memory:
            logger.warning(
                "a batch of %d failed (%s); running each request alone", len(group), failure
            )
            return [self._generate_rows([row])[0] for row in group]
        self.oom_batch_splits += 1
        half = len(group) // 2
        logger.warning(
            "out of memory at batch size %d; retrying as %d + %d",
            len(group),
            half,
            len(group) - half,
        )
        return self._generate_rows(group[:half]) + self._generate_rows(group[half:])

    @torch.inference_mode()
    def _generate_group(self, rows: list[Row]) -> list[RowOutcome]:
        loaded = self._model
        tokenizer, model = loaded.tokenizer, loaded.model
        group = [row.request for row in rows]
        prompts = [row.prompt for row in rows]
        input_ids, attention_mask, cache = layout_batch(
            prompts, [row.prefix for row in rows], tokenizer.pad_token_id, model.config
        )
        input_ids, attention_mask = input_ids.to(loaded.device), attention_mask.to(loaded.device)
        prompt_length = input_ids.shape[1]
        budgets = [row.budget for row in rows]
        first = group[0]
        if first.seed is not None and first.temperature > 0:
            torch.manual_seed(first.seed)  # the group shares its seed (sampling_key)
        sampling = (
            {"do_sample": True, "temperature": first.temperature, "top_p": first.top_p}
            if first.temperature > 0
            else {"do_sample": False, "temperature": None, "top_p": None}
        )
        schemas = [r.json_schema for r in group]
        if any(schemas):
            # Imported here: xgrammar loads only once a request asks for a schema.
            from deployments.engine.constrained import JsonSchemaLogitsProcessor

            sampling["logits_processor"] = [
                JsonSchemaLogitsProcessor(
                    tokenizer, schemas, budgets, model.config.vocab_size, eos_token_ids(model)
                )
            ]
        cancellation = RowCancellation(
            prompt_length, [row.cancelled for row in rows], loaded.device
        )
        stop_ids = set(eos_token_ids(model))
        streams = RowStreams(
            [
                RowText(tokenizer, row.request.stop, row.sink)
                if row.sink is not None or row.request.stop
                else None
                for row in rows
            ],
            budgets,
            stop_ids,
            loaded.device,
        )
        clock = FirstTokenClock()
        output = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            **cache_argument(model, cache),
            max_new_tokens=max(budgets),
            min_new_tokens=max(budgets) if first.ignore_eos else None,
            stopping_criteria=StoppingCriteriaList(
                [
                    RowTokenBudget(prompt_length, budgets, loaded.device),
                    cancellation,
                    streams,
                    clock,
                ]
            ),
            pad_token_id=tokenizer.pad_token_id,
            **sampling,
        )
        if first.seed is not None and first.temperature > 0:
            torch.seed()  # later unseeded batches sample from fresh randomness again
        return [
            with_first_token(
                RequestCancelled(cancellation.stopped_at[row])
                if row in cancellation.stopped_at
                else streams.result(row, len(prompt))
                if streams.trackers[row] is not None
                else decode_row(
                    tokenizer, output[row, prompt_length:].tolist(), len(prompt), budget, stop_ids
                ),
                clock.at,
            )
            for row, (prompt, budget) in enumerate(zip(prompts, budgets, strict=True))
        ]

    def status(self) -> dict[str, Any]:
        return {
            "engine": "static",
            **self._report(oom_batch_splits=self.oom_batch_splits),
            "prefix_cache": self.prefix_cache.stats(),
        }


@dataclass(frozen=True, eq=False)
class Row:
    index: int  # in the generate() call's requests
    request: GenerationRequest
    prompt: list[int]
    prefix: CachedPrefix | None
    budget: int  # max_new_tokens, cut to what the context leaves
    cancelled: CancelCheck
    sink: GuardedSink | None = None


def group_rows(rows: list[Row]) -> list[list[int]]:
    """Positions of rows that can share one generate() call, first-seen order kept: same sampling
    settings, and all with a cached prefix or all without (one row without would make every row
    of the call prefill its full length)."""
    groups: dict[tuple, list[int]] = {}
    for index, row in enumerate(rows):
        key = (row.request.sampling_key, row.prefix is not None)
        groups.setdefault(key, []).append(index)
    return list(groups.values())


def context_positions(model) -> int:
    """The most positions (prompt plus generated tokens) the model was built for."""
    return int(getattr(model.config, "max_position_embeddings", None) or 2**31)


def first_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


def eos_token_ids(model) -> list[int]:
    eos = model.generation_config.eos_token_id
    if eos is None:
        return []
    return [eos] if isinstance(eos, int) else list(eos)


def decode_row(
    tokenizer, new_tokens: list[int], prompt_tokens: int, budget: int, stop_ids: set[int]
) -> GenerationResult:
    """Cut a generated row at its first stop token or its budget, and decode it."""
    kept: list[int] = []
    finish_reason = "length"
    for token in new_tokens[:budget]:
        if token in stop_ids:
            finish_reason = "stop"
            break
        kept.append(token)
    text = tokenizer.decode(kept, skip_special_tokens=True)
    return GenerationResult(text, prompt_tokens, len(kept), finish_reason)
