"""The checkpoint's tokenizer, and chat prompts encoded so that text stays text.

A chat template rendered to one string and then tokenized turns a `<|user|>` or `[gMASK]` that a
user typed into the real control token: a forged turn. `encode_chat` renders the template with a
random stand-in for every message field, tokenizes the template's own text with its special
tokens, and every field's text with none recognised. ChatGLM3 itself built prompts that way
(`build_chat_input` passes each content to `sp.encode` as text), and for text without special
tokens the ids are exactly those of tokenizing the rendered template.

Why not transformers' `apply_chat_template(sanitize_control_tokens=True)`: it exists only in
recent 5.x releases (an older one takes the keyword as a template variable and sanitizes
nothing), and it encodes the text around each marked token separately, so an injected `[gMASK]`
comes out as other ids than `sp.encode` gives ChatGLM3 for the same text.

Ray-free and light: the HTTP side imports it to count request tokens with the real tokenizer.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployments.engine import chatglm3
from deployments.engine.errors import ModelNotAvailable

# Private-use characters around each stand-in: no tokenizer gives them meaning, no template edits
# them, and the random nonce in between cannot be guessed by the text it stands for.
STAND_IN = "\ue000{nonce}.{index}\ue001"
# Config keys that name a model's maximum positions, most specific first.
CONTEXT_KEYS = ("max_position_embeddings", "seq_length", "n_positions", "max_sequence_length")


def load_tokenizer(model_path: str | Path):
    """The tokenizer the engine uses for the checkpoint at `model_path`, in either layout (native
    `tokenizer.json`, or ChatGLM3's original `tokenizer.model`); ModelNotAvailable if none."""
    path = Path(model_path)
    if not path.is_dir():
        raise ModelNotAvailable(path, "model directory does not exist")
    try:
        if chatglm3.is_original_layout(path):
            if not (path / "tokenizer.model").is_file():
                raise ModelNotAvailable(path, "tokenizer.model is missing")
            tokenizer = chatglm3.build_tokenizer(path)
        else:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, KeyError, ImportError, TypeError) as error:
        raise ModelNotAvailable(path, f"no usable tokenizer: {error}") from error
    if not tokenizer.chat_template:
        raise ModelNotAvailable(path, "the tokenizer has no chat template")
    if getattr(tokenizer, "backend_tokenizer", None) is None:
        raise ModelNotAvailable(path, "the tokenizer is not a fast (tokenizers) tokenizer")
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def context_length(model_path: str | Path) -> int | None:
    """The model's maximum positions (prompt plus generated tokens), from its config.json;
    None when the config is missing or names none."""
    try:
        config = json.loads((Path(model_path) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    for key in CONTEXT_KEYS:
        value = config.get(key) if isinstance(config, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def encode_chat(
    tokenizer, messages: list[dict[str, str]], add_generation_prompt: bool = True
) -> list[int]:
    """Prompt ids for `messages`: the template's control tokens as special ids, every message
    field (content and any other text the template prints, except the role that selects its
    branch) as plain text. Fields go in verbatim where the template prints them; filters a
    template applies to a field (trim, replace) are not applied to the real text."""
    encoders = _encoders(tokenizer)
    nonce = secrets.token_hex(8)
    fields: dict[str, str] = {}
    stand_ins = []
    for message in messages:
        stand_in: dict[str, Any] = {}
        for key, value in message.items():
            if key != "role" and isinstance(value, str) and value:
                marker = STAND_IN.format(nonce=nonce, index=len(fields))
                fields[marker] = value
                value = marker
            stand_in[key] = value
        stand_ins.append(stand_in)
    rendered = tokenizer.apply_chat_template(
        stand_ins, add_generation_prompt=add_generation_prompt, tokenize=False
    )
    pieces = re.split(f"({'|'.join(map(re.escape, fields))})", rendered) if fields else [rendered]
    ids: list[int] = []
    text: list[str] = []  # plain text since the last control token: encoded as one chunk
    for position, piece in enumerate(pieces):
        if position % 2:  # re.split puts the stand-ins at odd positions
            text.append(fields[piece])
            continue
        for part in encoders.template_parts(piece):
            if isinstance(part, int):
                ids += encoders.plain("".join(text))
                ids.append(part)
                text = []
            else:
                text.append(part)
    return ids + encoders.plain("".join(text))


@dataclass(frozen=True)
class Encoders:
    """Two private copies of a tokenizer's backend. The shared one's `encode_special_tokens` is a
    switch that `tokenizer(..., split_special_tokens=...)` flips for every thread at once; each
    copy keeps its own setting for good, so concurrent encodes cannot see the other's."""

    with_specials: Any
    without_specials: Any
    special_ids: frozenset[int]

    def template_parts(self, piece: str) -> Iterator[str | int]:
        """Template text split at its special tokens: text, id, text, ..., text."""
        encoding = self.with_specials.encode(piece, add_special_tokens=False)
        cursor = 0
        for token_id, (start, end) in zip(encoding.ids, encoding.offsets, strict=True):
            if token_id in self.special_ids:
                yield piece[cursor:start]
                yield token_id
                cursor = end
        yield piece[cursor:]

    def plain(self, text: str) -> list[int]:
        if not text:
            return []
        return self.without_specials.encode(text, add_special_tokens=False).ids


_encoders_of: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_encoders_lock = threading.Lock()


def _encoders(tokenizer) -> Encoders:
    with _encoders_lock:
        encoders = _encoders_of.get(tokenizer)
        if encoders is None:
            encoders = _encoders_of[tokenizer] = build_encoders(tokenizer)
        return encoders


def build_encoders(tokenizer) -> Encoders:
    from tokenizers import Tokenizer

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise TypeError(f"{type(tokenizer).__name__} is not a fast tokenizer, as encode_chat needs")
    copies = []
    for split_special_tokens in (False, True):
        copy = Tokenizer.from_str(backend.to_str())
        copy.no_padding()
        copy.no_truncation()
        copy.encode_special_tokens = split_special_tokens
        copies.append(copy)
    special_ids = frozenset(
        token_id for token_id, token in tokenizer.added_tokens_decoder.items() if token.special
    )
    return Encoders(*copies, special_ids)
