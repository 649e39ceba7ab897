"""Grammar-constrained decoding: each batch row's output follows its own JSON schema.

One xgrammar matcher per row masks the logits to the tokens its grammar allows, so the reply is
valid JSON by construction; rows without a schema are left alone. Near the end of a row's token
budget the row switches to *closing*: whenever the grammar allows `"`, `]` or `}` it takes it, so
a schema with bounded strings and numbers (prompts.script_json_schema) finishes its JSON in time.

xgrammar's JSON strings admit raw control characters (a tab, U+001F), which JSON forbids
unescaped (`json.loads` refuses them); tokens carrying any byte below 0x20 are masked out of
constrained rows too (the grammar writes no whitespace between tokens: any_whitespace=False), so
a constrained reply is strict JSON.
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from collections import OrderedDict
from typing import Any

import torch
import xgrammar as xgr
from transformers import LogitsProcessor

logger = logging.getLogger(__name__)

# Tokens a closing row takes whenever its grammar allows them, best first.
CLOSING_TEXTS = ('"', "]", "}")
# Margin for the few characters that close enclosing objects and arrays.
CLOSING_MARGIN_TOKENS = 16
# The separators the grammar writes; the closing reserve counts them too.
JSON_SEPARATORS = (", ", ": ")
COMPILED_SCHEMA_CACHE_SIZE = 64  # schemas differ by language and scene count: about 40 in use


class GrammarToolkit:
    """What every processor for one tokenizer shares: the compiler, a bounded cache of compiled
    schemas and the ids of the closing tokens.

    xgrammar 0.2.8's own compile cache fails on schemas with string patterns
    (`per_rule_fsm_hashes` check), so it is off and compiled grammars are cached here instead.
    """

    def __init__(self, info: xgr.TokenizerInfo, vocab_size: int):
        self.compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
        self.closing_token_ids = _closing_token_ids(info, vocab_size)
        self.no_control_words = _no_control_bitmask(info, vocab_size)
        self._compiled: OrderedDict[str, xgr.CompiledGrammar] = OrderedDict()
        self._lock = threading.Lock()

    def compiled(self, schema: dict[str, Any]) -> xgr.CompiledGrammar:
        key = json.dumps(schema, ensure_ascii=False)
        with self._lock:
            if key in self._compiled:
                self._compiled.move_to_end(key)
                return self._compiled[key]
        grammar = self.compiler.compile_json_schema(
            key, any_whitespace=False, separators=JSON_SEPARATORS
        )
        with self._lock:
            self._compiled[key] = grammar
            while len(self._compiled) > COMPILED_SCHEMA_CACHE_SIZE:
                self._compiled.popitem(last=False)
        return grammar


_toolkits: weakref.WeakKeyDictionary[Any, dict[tuple, GrammarToolkit]] = weakref.WeakKeyDictionary()


def grammar_toolkit(tokenizer, vocab_size: int, stop_token_ids: list[int]) -> GrammarToolkit:
    """Built once per tokenizer, vocabulary size and stop tokens; forgotten with the tokenizer."""
    per_tokenizer = _toolkits.setdefault(tokenizer, {})
    key = (vocab_size, tuple(stop_token_ids))
    if key not in per_tokenizer:
        info = xgr.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=vocab_size, stop_token_ids=list(stop_token_ids) or None
        )
        per_tokenizer[key] = GrammarToolkit(info, vocab_size)
    return per_tokenizer[key]


def closing_reserve(schema: dict[str, Any]) -> int:
    """Tokens that always suffice to finish the JSON from any point inside one array item.

    The worst case is a row that starts an item just before closing: every required key must
    still be written, each string needs one (up to 4-byte) character, numbers their longest form.
    Counted in UTF-8 bytes, because no tokenizer needs more than one token per byte.
    """
    worst_item = max(
        (_worst_minimal_instance(sub) for sub in _array_item_schemas(schema)),
        key=len,
        default=b"",
    )
    return len(worst_item) + CLOSING_MARGIN_TOKENS


class JsonSchemaLogitsProcessor(LogitsProcessor):
    """Masks each row's logits to its own JSON schema; one instance per `generate()` call."""

    def __init__(
        self,
        tokenizer,
        schemas: list[dict[str, Any] | None],
        budgets: list[int],
        vocab_size: int,
        stop_token_ids: list[int],
    ):
        toolkit = grammar_toolkit(tokenizer, vocab_size, stop_token_ids)
        self.vocab_size = vocab_size
        self.budgets = budgets
        self.matchers: list[xgr.GrammarMatcher | None] = []
        self.reserves: list[int] = []
        for schema in schemas:
            if schema is None:
                self.matchers.append(None)
                self.reserves.append(0)
                continue
            self.matchers.append(xgr.GrammarMatcher(toolkit.compiled(schema)))
            self.reserves.append(closing_reserve(schema))
        self.closing_tokens = toolkit.closing_token_ids
        self.no_control_words = toolkit.no_control_words
        self.bitmask = xgr.allocate_token_bitmask(len(schemas), vocab_size)
        self.step = 0
        self.abandoned = [False] * len(schemas)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.step > 0:
            self._accept(input_ids[:, -1].tolist())
        active = [row for row in range(len(self.matchers)) if self._constrains(row, self.step)]
        if active:
            scores = self._mask(scores, active)
        self.step += 1
        return scores

    def _constrains(self, row: int, step: int) -> bool:
        matcher = self.matchers[row]
        return (
            matcher is not None
            and not self.abandoned[row]
            and not matcher.is_terminated()
            and step < self.budgets[row]
        )

    def _accept(self, tokens: list[int]) -> None:
        for row, token in enumerate(tokens):
            if self._constrains(row, self.step - 1) and not self.matchers[row].accept_token(token):
                # Only when something upstream overrode the mask (e.g. min_new_tokens banned
                # the stop token the grammar wanted): give the row up rather than fail the batch.
                logger.warning(
                    "row %d left its grammar at step %d; unconstrained now", row, self.step
                )
                self.abandoned[row] = True

    def _mask(self, scores: torch.FloatTensor, rows: list[int]) -> torch.FloatTensor:
        for row in rows:
            self.matchers[row].fill_next_token_bitmask(self.bitmask, row)
        cpu_index = torch.tensor(rows)
        self.bitmask[cpu_index] &= self.no_control_words  # strict JSON: no raw control characters
        index = cpu_index.to(scores.device)  # a list index would be ~100x slower
        original = scores.index_select(0, index)
        bitmask = self.bitmask.to(scores.device)
        xgr.apply_token_bitmask_inplace(scores, bitmask, vocab_size=self.vocab_size, indices=rows)
        for row in rows:
            if self.budgets[row] - self.step <= self.reserves[row]:
                self._force_closing_token(scores, row)
        # A row left with nothing allowed (another processor banned all the grammar wants)
        # keeps its original scores, so sampling never sees an all -inf row.
        dead = torch.isneginf(scores.index_select(0, index)).all(dim=-1)
        if dead.any():
            scores[index[dead]] = original[dead]
        return scores

    def _force_closing_token(self, scores: torch.FloatTensor, row: int) -> None:
        words = self.bitmask[row]
        for token in self.closing_tokens:
            if (int(words[token // 32]) >> (token % 32)) & 1:
                keep = scores[row, token].clone()
                scores[row].fill_(float("-inf"))
                scores[row, token] = keep if torch.isfinite(keep) else 0.0
                return


def _closing_token_ids(info: xgr.TokenizerInfo, vocab_size: int) -> tuple[int, ...]:
    """Ids of single-character tokens for `"`, `]` and `}`, in CLOSING_TEXTS order."""
    vocab = info.decoded_vocab[:vocab_size]
    return tuple(
        i for text in CLOSING_TEXTS for i, token in enumerate(vocab) if token == text.encode()
    )


def _no_control_bitmask(info: xgr.TokenizerInfo, vocab_size: int) -> torch.Tensor:
    """A token bitmask row (xgrammar's layout: bit i of word i // 32) with every token allowed
    but those whose bytes include a control character (below 0x20)."""
    words = xgr.allocate_token_bitmask(1, vocab_size)[0]  # all bits set
    for token, text in enumerate(info.decoded_vocab[:vocab_size]):
        if any(byte < 0x20 for byte in text):
            words[token // 32] &= ~(1 << (token % 32))
    return words


def _array_item_schemas(schema: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(schema, dict):
        if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
            found.append(schema["items"])
        for value in schema.values():
            found.extend(_array_item_schemas(value))
    elif isinstance(schema, list):
        for value in schema:
            found.extend(_array_item_schemas(value))
    return found


def _worst_minimal_instance(schema: dict[str, Any]) -> bytes:
    """The longest of the shortest completions of `schema`, as the grammar writes it."""
    return json.dumps(
        _worst_minimal_value(schema), ensure_ascii=False, separators=JSON_SEPARATORS
    ).encode()


def _worst_minimal_value(schema: dict[str, Any]) -> Any:
    if "enum" in schema:
        return max(schema["enum"], key=lambda v: len(json.dumps(v, ensure_ascii=False)))
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {
            name: _worst_minimal_value(properties.get(name, {}))
            for name in schema.get("required", [])
        }
    if kind == "array":
        item = _worst_minimal_value(schema.get("items", {}))
        return [item] * schema.get("minItems", 0)
    if kind == "string":
        return "\U0001f600" * max(1, schema.get("minLength", 0))  # a 4-byte character each
    if kind == "integer":
        bounds = [schema.get("minimum", -(10**15)), schema.get("maximum", 10**15)]
        return max(bounds, key=lambda b: len(str(b)))
    if kind == "number":
        return -1.0e15
    return None
