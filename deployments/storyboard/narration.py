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
# A sentence ends at 。！？!?… or a full stop before a space; a clause at ，,；;：: as well.
_SENTENCE_END = re.compile(r"(?<=[。！？!?…])|(?<=[.;])(?=\s)")
_CLAUSE_END = re.compile(r"(?<=[。！？!?…，；：、])|(?<=[.,;:])(?=\s)")
_CLAUSE_MARK = "，；：、,;:"


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
    """`text` when it fits; else its longest run of leading whole sentences that fits; else of
    leading whole clauses, closed with a full stop; else an empty line (a silent shot) — never a
    sentence cut inside a clause."""
    if narration_fits(text, seconds, language):
        return text
    for pieces in (_SENTENCE_END.split(text), _CLAUSE_END.split(text)):
        kept = _leading_that_fit([p for p in pieces if p], seconds, language)
        if kept:
            return _closed(kept, language)
    return ""


def _leading_that_fit(pieces: list[str], seconds: float, language: ScriptLanguage) -> str:
    kept = ""
    for piece in pieces:
        if not narration_fits(kept + piece, seconds, language):
            break
        kept += piece
    return kept.strip()


def _closed(text: str, language: ScriptLanguage) -> str:
    """A line that ended on a clause mark ends on a full stop instead."""
    if text and text[-1] in _CLAUSE_MARK:
        return text[:-1] + ("。" if language == "zh" else ".")
    return text
