"""Narration that can be spoken in its scene's time: the budget of a scene, how a line is
measured against it, and how the fallback shortens a line to fit (whole sentences, then whole
clauses; never a cut inside one).

The rates are constants (storyboard.constants): ZH_NARRATION_CHARS_PER_SECOND Chinese characters
or EN_NARRATION_WORDS_PER_SECOND English words per second of the scene.
"""

from __future__ import annotations

import math
import re

from deployments.storyboard.constants import (
    EN_CHARS_PER_WORD,
    EN_NARRATION_WORDS_PER_SECOND,
    ZH_NARRATION_CHARS_PER_SECOND,
    ScriptLanguage,
)
from deployments.storyboard.language import cjk_count

_WORD = re.compile(r"[A-Za-z0-9]+(?:['’-][A-Za-z0-9]+)*")
# A sentence ends at 。！？!?… or at . ! ? before a space; a clause also at a semicolon or colon,
# and in Chinese at a comma.
_SENTENCE_END = re.compile(r"(?<=[。！？!?…])|(?<=[.!?])(?=\s)")
_CLAUSE_END: dict[ScriptLanguage, re.Pattern[str]] = {
    "zh": re.compile(r"(?<=[。！？!?…，；：;:])"),
    "en": re.compile(r"(?<=[;:])(?=\s)|(?<=[.!?])(?=\s)"),
}
_CLAUSE_MARKS = "，；：、,;:"


def narration_budget(seconds: float, language: ScriptLanguage) -> int:
    """How much narration a scene of `seconds` can carry: Chinese characters (zh) or English
    words (en)."""
    rate = ZH_NARRATION_CHARS_PER_SECOND if language == "zh" else EN_NARRATION_WORDS_PER_SECOND
    return math.floor(seconds * rate + 1e-9)


def budget_unit(language: ScriptLanguage) -> str:
    return "characters" if language == "zh" else "words"


def spoken_length(text: str, language: ScriptLanguage) -> int:
    """What a line costs to say, in the budget's unit: in Chinese each hanzi and each English
    word or number counts one; in English each word (a hanzi counts as one word too)."""
    words = len(_WORD.findall(text))
    return cjk_count(text) + words


def narration_fits(text: str, seconds: float, language: ScriptLanguage) -> bool:
    return spoken_length(text, language) <= narration_budget(seconds, language)


def narration_schema_chars(seconds: float, language: ScriptLanguage) -> int:
    """A length bound in characters for a scene's narration in the model's JSON schema: the
    budget, with English words at EN_CHARS_PER_WORD characters each."""
    budget = narration_budget(seconds, language)
    return max(1, budget if language == "zh" else budget * EN_CHARS_PER_WORD)


def fit_narration(text: str, seconds: float, language: ScriptLanguage) -> str:
    """The longest of `text`'s shortenings that fits a scene of `seconds`; an empty line (a
    silent shot) when none does."""
    return next(
        (
            short
            for short in shortenings(text, language)
            if narration_fits(short, seconds, language)
        ),
        "",
    )


def shortenings(text: str, language: ScriptLanguage) -> list[str]:
    """`text`, then its leading whole sentences, then the leading whole clauses of its first
    sentence closed with a full stop — longest first, never a cut inside a clause.

    A clause ends at a semicolon or colon, and in Chinese also at a comma (一份好味道，从挑选原料
    开始。→ 一份好味道。); an English comma does not end one ("If not now." is no line).
    """
    found = [text.strip()]
    sentences = [piece for piece in _SENTENCE_END.split(text) if piece.strip()] or [""]
    clauses = [piece for piece in _CLAUSE_END[language].split(sentences[0]) if piece.strip()]
    for pieces in (sentences, clauses):
        for count in range(len(pieces) - 1, 0, -1):
            short = _closed("".join(pieces[:count]).strip(), language)
            if short not in found:
                found.append(short)
    return found


def _closed(text: str, language: ScriptLanguage) -> str:
    """A line that ended on a clause mark ends on a full stop instead."""
    if text and text[-1] in _CLAUSE_MARKS:
        return text[:-1] + ("。" if language == "zh" else ".")
    return text
