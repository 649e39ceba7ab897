"""Prefix caching: the KV cache of a prompt prefix that many requests share, computed once.

Every storyboard request starts with the same instructions, schema and example (hundreds of
tokens); only its tail differs. Without this, each request pays that prefill again. Entries are
found automatically: when a prompt shares at least `min_tokens` leading tokens with another
prompt of its batch or with a recent one, that common prefix (at most `max_tokens` of it) is
prefilled once (batch of one) and kept. The entries most requests started with (the shared
instructions of each language: half the entries, by hits) are kept for good; the least recently
used of the others goes first, so a run of new custom system prompts cannot push the shared
instructions out. Entries hold at most `max_entries × max_tokens` tokens of KV, which the
engine's KV budget (`EngineConfig.kv_cache_tokens`) plans for. In a batch, each row starts with
its longest cached prefix and only the rest is prefilled; `layout_batch` lines rows up as
[padding · cached prefix] [padding · rest], so rows with different prefixes share one
`generate()` call (positions come from the attention mask, so padding in the middle is harmless).
The engine runs rows without a cached prefix in a call of their own.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache as memoize
from typing import Any

import torch
from transformers import DynamicCache

RECENT_PROMPTS = 16  # prompts remembered to discover a shared prefix across batches


@dataclass
class CachedPrefix:
    tokens: tuple[int, ...]
    keys_values: list[tuple[torch.Tensor, torch.Tensor]]  # per layer, batch of one
    hits: int = 0  # requests that started with it

    def __len__(self) -> int:
        return len(self.tokens)


class PrefixCache:
    def __init__(self, max_entries: int, min_tokens: int, max_tokens: int = 1024):
        self.max_entries = max_entries
        self.min_tokens = min_tokens
        self.max_tokens = max_tokens
        self._entries: OrderedDict[tuple[int, ...], CachedPrefix] = OrderedDict()
        self._recent: deque[tuple[int, ...]] = deque(maxlen=RECENT_PROMPTS)
        self.hits = 0
        self.misses = 0
        self.reused_tokens = 0
        self.prefilled_prefixes = 0
        self.evictions = 0

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    def clear(self) -> None:
        self._entries.clear()
        self._recent.clear()

    def assign(self, prompts: Sequence[Sequence[int]], model) -> list[CachedPrefix | None]:
        """For each prompt, the cached prefix it starts with (computing a new shared one first
        when worthwhile), or None. Counts hits and the tokens they save."""
        if not self.enabled:
            return [None] * len(prompts)
        prompts = [tuple(prompt) for prompt in prompts]
        for candidate in self._new_shared_prefixes(prompts):
            self._store(candidate, model)
        assigned = [self._longest_cached_prefix(prompt) for prompt in prompts]
        for prompt, prefix in zip(prompts, assigned, strict=True):
            self._recent.append(prompt)
            if prefix is None:
                self.misses += 1
            else:
                self.hits += 1
                prefix.hits += 1
                self.reused_tokens += len(prefix)
                self._entries.move_to_end(prefix.tokens)
        return assigned

    def stats(self) -> dict[str, Any]:
        return {
            "entries": len(self._entries),
            "max_entries": self.max_entries,
            "hits": self.hits,
            "misses": self.misses,
            "reused_tokens": self.reused_tokens,
            "prefilled_prefixes": self.prefilled_prefixes,
            "evictions": self.evictions,
            "cached_tokens": sum(len(tokens) for tokens in self._entries),
            "max_tokens": self.max_tokens,
        }

    def _longest_cached_prefix(self, prompt: tuple[int, ...]) -> CachedPrefix | None:
        # A prefix must leave at least one token of the prompt to prefill.
        matching = [
            entry
            for tokens, entry in self._entries.items()
            if len(tokens) < len(prompt) and prompt[: len(tokens)] == tokens
        ]
        return max(matching, key=len, default=None)

    def _new_shared_prefixes(self, prompts: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
        """For prompts no entry covers: their longest common prefix with another prompt of the
        batch or a recent one, when at least `min_tokens` long. Covered prompts make no new
        entries, so repeats of one request cannot crowd the shared instructions out."""
        found: list[tuple[int, ...]] = []
        for index, prompt in enumerate(prompts):
            if self._longest_cached_prefix(prompt) or any(
                prompt[: len(f)] == f and len(f) < len(prompt) for f in found
            ):
                continue
            head = prompt[: self.min_tokens]
            longest = 0
            for other in [*prompts[:index], *prompts[index + 1 :], *self._recent]:
                if other[: self.min_tokens] == head:  # cheap test before the exact length
                    longest = max(longest, common_prefix_length(prompt, other))
            longest = min(longest, len(prompt) - 1, self.max_tokens)
            if longest >= self.min_tokens:
                found.append(prompt[:longest])
        return found

    @torch.inference_mode()
    def _store(self, tokens: tuple[int, ...], model) -> None:
        input_ids = torch.tensor([tokens], device=model.device)
        cache = DynamicCache(config=model.config)
        model(input_ids=input_ids, use_cache=True, **cache_argument(model, cache))
        self._entries[tokens] = CachedPrefix(tokens, [(keys, values) for keys, values, _ in cache])
        self.prefilled_prefixes += 1
        while len(self._entries) > self.max_entries:
            self._evict_one()

    def _evict_one(self) -> None:
        """The least recently used entry that is not among the most used half."""
        by_hits = sorted(reversed(self._entries.values()), key=lambda e: e.hits, reverse=True)
        kept = {id(entry) for entry in by_hits[: self.max_entries // 2] if entry.hits}
        for tokens, entry in self._entries.items():  # least recently used first
            if id(entry) not in kept:
                del self._entries[tokens]
                self.evictions += 1
                return


def cache_argument(model, cache: DynamicCache | None) -> dict[str, DynamicCache | None]:
    """`{name: cache}` for the model's forward() and generate(): transformers 5.2x calls the KV
    cache `cache`, earlier 5.x (vLLM's CPU build pins 5.19) `past_key_values`. Passing the other
    name is no error there: forward() swallows it in **kwargs and runs without the cache, so the
    prefix's keys stayed None (`'NoneType' object has no attribute 'shape'`)."""
    return {_cache_parameter(type(model)): cache}


@memoize
def _cache_parameter(model_class: type) -> str:
    parameters = inspect.signature(model_class.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def common_prefix_length(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """Length of the longest common prefix, by binary search over C-speed slice comparisons."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def layout_batch(
    prompts: Sequence[Sequence[int]],
    prefixes: Sequence[CachedPrefix | None],
    pad_token_id: int,
    config,
) -> tuple[torch.Tensor, torch.Tensor, DynamicCache | None]:
    """input_ids, attention_mask and the cache of the cached parts, for one generate() call.

    Row i is [pad × (P - p_i)] [its prefix, p_i tokens] [pad × (T - t_i)] [its rest, t_i tokens]
    with P, T the longest prefix and rest; the cache holds the first P positions. Without
    prefixes this is plain left padding."""
    prefix_lengths = [len(prefix) if prefix else 0 for prefix in prefixes]
    rests = [list(prompt[length:]) for prompt, length in zip(prompts, prefix_lengths, strict=True)]
    longest_prefix = max(prefix_lengths)
    longest_rest = max(len(rest) for rest in rests)
    input_ids, attention_mask = [], []
    for prompt, length, rest in zip(prompts, prefix_lengths, rests, strict=True):
        prefix_pad, rest_pad = longest_prefix - length, longest_rest - len(rest)
        input_ids.append(
            [pad_token_id] * prefix_pad + list(prompt[:length]) + [pad_token_id] * rest_pad + rest
        )
        attention_mask.append([0] * prefix_pad + [1] * length + [0] * rest_pad + [1] * len(rest))
    cache = _batch_cache(prefixes, longest_prefix, config) if longest_prefix else None
    return torch.tensor(input_ids), torch.tensor(attention_mask), cache


def _batch_cache(prefixes: Sequence[CachedPrefix | None], longest: int, config) -> DynamicCache:
    """Each row's prefix keys/values, right-aligned in `longest` positions (zeros are masked)."""
    template = next(prefix for prefix in prefixes if prefix).keys_values
    layers = []
    for layer, (keys, values) in enumerate(template):
        batch_shape = (len(prefixes), keys.shape[1], longest, keys.shape[3])
        batch_keys = keys.new_zeros(batch_shape)
        batch_values = values.new_zeros(batch_shape)
        for row, prefix in enumerate(prefixes):
            if prefix:
                row_keys, row_values = prefix.keys_values[layer]
                batch_keys[row, :, longest - len(prefix) :] = row_keys[0]
                batch_values[row, :, longest - len(prefix) :] = row_values[0]
        layers.append((batch_keys, batch_values))
    return DynamicCache(ddp_cache_data=layers, config=config)
