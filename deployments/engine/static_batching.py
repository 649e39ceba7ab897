"""Static batching: one left-padded `generate()` call per batch that @serve.batch hands us."""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from deployments.engine.base import GenerationRequest, GenerationResult
from deployments.engine.checkpoint_engine import CheckpointEngine
from deployments.engine.loading import ModelNotAvailable, free_memory
from deployments.engine.prefix_cache import CachedPrefix, PrefixCache, layout_batch
from deployments.engine.tokenizer import encode_chat

logger = logging.getLogger(__name__)


class RowTokenBudget(StoppingCriteria):
    """Stops each row at its own max_new_tokens, so one batch can mix budgets."""

    def __init__(self, prompt_length: int, budgets: list[int], device: str):
        self.prompt_length = prompt_length
        self.budgets = torch.tensor(budgets, device=device)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        return (input_ids.shape[1] - self.prompt_length) >= self.budgets


class StaticBatchingEngine(CheckpointEngine):
    def __init__(
        self,
        model_path: str,
        *checkpoint_args: Any,
        prefix_cache_entries: int = 8,
        prefix_cache_min_tokens: int = 64,
        **checkpoint_kwargs: Any,
    ):
        """Checkpoint arguments as `CheckpointEngine` takes them; prefix-cache knobs by name."""
        super().__init__(model_path, *checkpoint_args, **checkpoint_kwargs)
        self.oom_batch_splits = 0
        self.prefix_cache = PrefixCache(prefix_cache_entries, prefix_cache_min_tokens)
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
    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        results: dict[int, GenerationResult] = {}
        with self._generate_lock:
            if self._model is None:
                raise ModelNotAvailable(self.model_path, self.unavailable_reason or "not loaded")
            started = self._busy_since = time.monotonic()
            try:
                rows = self._rows(requests)
                for indices in group_rows(rows):
                    group = [rows[i] for i in indices]
                    results_in_order = self._generate_splitting_on_oom(group)
                    for index, result in zip(indices, results_in_order, strict=True):
                        results[index] = result
            except Exception:
                self.counters.failures += len(requests)
                raise
            finally:
                self._busy_since = None
        ordered = [results[i] for i in range(len(requests))]
        generated = sum(r.completion_tokens for r in ordered)
        self.counters.record_batch(len(requests), generated, time.monotonic() - started)
        return ordered

    def _rows(self, requests: list[GenerationRequest]) -> list[Row]:
        """Each request with its prompt tokens and the cached prefix it starts with (if any)."""
        loaded = self._model
        prompts = [encode_chat(loaded.tokenizer, r.messages) for r in requests]
        try:
            prefixes = self.prefix_cache.assign(prompts, loaded.model)
        except torch.OutOfMemoryError:
            prefixes = None
        if prefixes is None:  # no room to prefill a new prefix: these rows prefill in full
            free_memory()  # outside `except`, so the failed attempt's tensors are unreachable
            prefixes = [None] * len(requests)
        return [Row(*row) for row in zip(requests, prompts, prefixes, strict=True)]

    def _generate_splitting_on_oom(self, group: list[Row]) -> list[GenerationResult]:
        """On out-of-memory run each half on its own; only a lone request that fails re-raises."""
        try:
            return self._generate_group(group)
        except torch.OutOfMemoryError:
            if len(group) == 1:
                raise
        free_memory()  # outside `except`, so the failed attempt's tensors are unreachable
        self.oom_batch_splits += 1
        half = len(group) // 2
        logger.warning(
            "out of memory at batch size %d; retrying as %d + %d",
            len(group),
            half,
            len(group) - half,
        )
        return self._generate_splitting_on_oom(group[:half]) + self._generate_splitting_on_oom(
            group[half:]
        )

    @torch.inference_mode()
    def _generate_group(self, rows: list[Row]) -> list[GenerationResult]:
        loaded = self._model
        tokenizer, model = loaded.tokenizer, loaded.model
        group = [row.request for row in rows]
        prompts = [row.prompt for row in rows]
        input_ids, attention_mask, cache = layout_batch(
            prompts, [row.prefix for row in rows], tokenizer.pad_token_id, model.config
        )
        input_ids, attention_mask = input_ids.to(loaded.device), attention_mask.to(loaded.device)
        prompt_length = input_ids.shape[1]
        budgets = [r.max_new_tokens for r in group]
        first = group[0]
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
        output = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            cache=cache,
            max_new_tokens=max(budgets),
            min_new_tokens=max(budgets) if first.ignore_eos else None,
            stopping_criteria=StoppingCriteriaList(
                [RowTokenBudget(prompt_length, budgets, loaded.device)]
            ),
            pad_token_id=tokenizer.pad_token_id,
            **sampling,
        )
        stop_ids = set(eos_token_ids(model))
        return [
            decode_row(
                tokenizer, output[row, prompt_length:].tolist(), len(prompt), budget, stop_ids
            )
            for row, (prompt, budget) in enumerate(zip(prompts, budgets, strict=True))
        ]

    def status(self) -> dict[str, Any]:
        return {
            "engine": "static",
            **self._report(oom_batch_splits=self.oom_batch_splits),
            "prefix_cache": self.prefix_cache.stats(),
        }


@dataclass(frozen=True)
class Row:
    request: GenerationRequest
    prompt: list[int]
    prefix: CachedPrefix | None


def group_rows(rows: list[Row]) -> list[list[int]]:
    """Indices of rows that can share one generate() call, first-seen order kept: same sampling
    settings, and all with a cached prefix or all without (one row without would make every row
    of the call prefill its full length)."""
    groups: dict[tuple, list[int]] = {}
    for index, row in enumerate(rows):
        key = (row.request.sampling_key, row.prefix is not None)
        groups.setdefault(key, []).append(index)
    return list(groups.values())


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
