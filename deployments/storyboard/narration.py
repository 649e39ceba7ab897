"""Narration that can be spoken in its scene's time: the budget of a scene, how a line is
measured against it, and how the fallback shortens a line to fit (whole sentences, then whole
clauses; never a cut inside one).

The rates are constants (storyboard.constants.NARRATION_RATES): characters per second in the CJK
scripts (zh, ja, ko: hanzi, kana and kanji, hangul syllables), words per second in the Latin ones
(en, es, fr, de).
"""

from __future__ import annotations

import math
import re

from deployments.storyboard.constants import (
    CHARS_PER_WORD,
    LANGUAGE_SCRIPTS,
    NARRATION_RATES,
    ScriptLanguage,
)
from deployments.storyboard.language import east_asian_count

# A word: letters of any Latin-script language (é, ñ, ß), digits, joined by apostrophes or hyphens.
_WORD = re.compile(
    r"[^\W_\u3040-\u30ff\u3400-\u9fff\uac00-\ud7a3\uf900-\ufaff]+(?:['’-][^\W_\u3040-\u30ff\u3400-\u9fff\uac00-\ud7a3\uf900-\ufaff]+)*"
)
# A sentence ends at 。！？!?… or at . ! ? before a space; a clause also at a semicolon or colon,
# and in the character-counted languages at a comma (，、 and Korean's ", ").
_SENTENCE_END = re.compile(r"(?<=[。！？!?…])|(?<=[.!?])(?=\s)")
_CJK_CLAUSE_END = re.compile(r"(?<=[。！？!?…，；：;:、])|(?<=,)(?=\s)")  # Korean writes ", "
_LATIN_CLAUSE_END = re.compile(r"(?<=[;:])(?=\s)|(?<=[.!?])(?=\s)")
_CLAUSE_MARKS = "，；：、,;:"


def counts_characters(language: ScriptLanguage) -> bool:
    """Whether `language`'s narration is counted in characters (CJK) rather than words."""
    return LANGUAGE_SCRIPTS[language] != "latin"


def _clause_end(language: ScriptLanguage) -> re.Pattern[str]:
    return _CJK_CLAUSE_END if counts_characters(language) else _LATIN_CLAUSE_END


def narration_budget(seconds: float, language: ScriptLanguage) -> int:
    """How much narration a scene of `seconds` can carry: characters (zh, ja, ko) or words."""
    return math.floor(seconds * NARRATION_RATES[language] + 1e-9)


def budget_unit(language: ScriptLanguage) -> str:
    return "characters" if counts_characters(language) else "words"


def spoken_length(text: str, language: ScriptLanguage) -> int:
    """What a line costs to say, in the budget's unit: each hanzi, kana or hangul syllable
    counts one, and so does each Latin-script word or number (in any language)."""
    return east_asian_count(text) + len(_WORD.findall(text))


def narration_fits(text: str, seconds: float, language: ScriptLanguage) -> bool:
    return spoken_length(text, language) <= narration_budget(seconds, language)


def narration_schema_chars(seconds: float, language: ScriptLanguage) -> int:
    """A length bound in characters for a scene's narration in the model's JSON schema: the
    budget, with a word at CHARS_PER_WORD[language] characters."""
    budget = narration_budget(seconds, language)
    return max(1, budget if counts_characters(language) else budget * CHARS_PER_WORD[language])


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
    clauses = [piece for piece in _clause_end(language).split(sentences[0]) if piece.strip()]
    for pieces in (sentences, clauses):
        for count in range(len(pieces) - 1, 0, -1):
            short = _closed("".join(pieces[:count]).strip(), language)
            if short not in found:
                found.append(short)
    return found


def _closed(text: str, language: ScriptLanguage) -> str:
    """A line that ended on a clause mark ends on a full stop instead."""
    if text and text[-1] in _CLAUSE_MARKS:
        return text[:-1] + ("。" if LANGUAGE_SCRIPTS[language] in ("hanzi", "kana") else ".")
    return text
