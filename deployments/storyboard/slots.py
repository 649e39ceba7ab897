"""Typed slots in the fallback's templates: `{topic}`, `{subject}` and `{KIND|default}`.

A slot says what kind of word it takes (a place, a food, a product, ...), so a prompt keyword
only lands where it makes sense; a slot the prompt has no word for is written with its default.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from deployments.storyboard.constants import TERM_KINDS

SLOT = re.compile(r"\{([a-z_]+)(?:\|([^{}]*))?\}")
NAMED_SLOTS = ("topic", "subject")  # filled from the prompt or the genre: no default needed


def slots_in(text: str) -> list[tuple[str, str | None]]:
    """(name, default) of every slot in `text`; ValueError on a brace that is not a slot, an
    unknown name, or a typed slot without its default."""
    outside = SLOT.sub("", text)
    if "{" in outside or "}" in outside:
        raise ValueError("a brace that is not a slot: write {topic}, {subject} or {KIND|default}")
    found = []
    for match in SLOT.finditer(text):
        name, default = match.group(1), match.group(2)
        if name in NAMED_SLOTS:
            if default is not None:
                raise ValueError(f"{{{name}}} takes no default")
        elif name in TERM_KINDS:
            if not default or not default.strip():
                raise ValueError(f"{{{name}|...}} needs a default for prompts without a {name}")
        else:
            known = ", ".join(f"{{{n}}}" for n in NAMED_SLOTS) + ", {KIND|default} for KIND in "
            raise ValueError(f"unknown slot {{{name}}}; allowed: {known}{', '.join(TERM_KINDS)}")
        found.append((name, default))
    return found


def render(
    text: str,
    fill: Callable[[str, str | None], str],
    attach: Callable[[str, str], str] | None = None,
) -> str:
    """`text` with each slot replaced by fill(name, default); `attach(word, following)` may
    rewrite the text after each filled slot (a Korean particle agreeing with the word)."""
    if attach is None:
        return SLOT.sub(lambda match: fill(match.group(1), match.group(2)), text)
    parts: list[str] = []
    position, word = 0, None
    for match in SLOT.finditer(text):
        literal = text[position : match.start()]
        parts.append(attach(word, literal) if word is not None else literal)
        word = fill(match.group(1), match.group(2))
        parts.append(word)
        position = match.end()
    rest = text[position:]
    parts.append(attach(word, rest) if word is not None else rest)
    return "".join(parts)
