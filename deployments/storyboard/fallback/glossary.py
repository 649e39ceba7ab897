"""The lexicon (data/glossary.yaml): Chinese ↔ English words with the kind of thing each names,
so a Chinese prompt's subject reaches English lines and visual prompts, and a keyword only fills
template slots of its kind. Optional ja/ko/es/fr/de columns (a word, or a list whose first is the
one the script writes) type those languages' prompt words and carry a subject across languages.

Covers the subjects short videos are usually about; a word outside it keeps the kind its part of
speech suggests, and a line in the other language uses the slot's default instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, create_model

from deployments.storyboard.constants import SCRIPT_LANGUAGES, ScriptLanguage, TermKind
from deployments.storyboard.content import (
    DATA_DIR,
    FIXED_TEXT,
    ContentModel,
    EnglishWord,
    Word,
    load_file,
)
from deployments.storyboard.language import cjk_count


def _chinese(word: str) -> str:
    if not cjk_count(word):
        raise ValueError("must be a Chinese word")
    return word


# Languages besides the zh ↔ en pivot: optional columns (an entry says what it can).
OTHER_LANGUAGES: tuple[ScriptLanguage, ...] = tuple(
    code for code in SCRIPT_LANGUAGES if code not in ("zh", "en")
)


class _EntryBase(ContentModel):
    zh: Annotated[Word, AfterValidator(_chinese)]
    en: EnglishWord  # lower case unless a name (Kyoto)
    kind: TermKind | None = None

    def word(self, language: ScriptLanguage) -> str | None:
        """The word a script in `language` writes (the first of a column's list)."""
        words = self.words(language)
        return words[0] if words else None

    def words(self, language: ScriptLanguage) -> tuple[str, ...]:
        """Every word of `language` that names this entry (prompts may use any of them)."""
        value = getattr(self, language)
        if value is None:
            return ()
        return (value,) if isinstance(value, str) else tuple(value)

    def others(self) -> tuple[tuple[ScriptLanguage, str], ...]:
        """(language, word) for each filled column besides zh/en."""
        found = ((code, self.word(code)) for code in OTHER_LANGUAGES)
        return tuple((code, word) for code, word in found if word)


# A column holds one word or a non-empty list of them (the first is the one scripts write).
Entry = create_model(  # type: ignore[call-overload]
    "Entry",
    __base__=_EntryBase,
    **{
        code: (
            FIXED_TEXT[code] | Annotated[tuple[FIXED_TEXT[code], ...], Field(min_length=1)] | None,
            None,
        )
        for code in OTHER_LANGUAGES
    },
)


class Glossary(ContentModel):
    """Entries in order: a Chinese word listed twice translates to its last English; an English
    word (any case) translates back to the first Chinese listed for it."""

    entries: tuple[Entry, ...]  # type: ignore[valid-type]

    @property
    def by_zh(self) -> dict[str, Entry]:
        return {entry.zh: entry for entry in self.entries}

    @property
    def by_en(self) -> dict[str, Entry]:
        back: dict[str, Entry] = {}
        for entry in self.entries:
            back.setdefault(entry.en.lower(), entry)
        return back

    def by_language(self, language: ScriptLanguage) -> dict[str, Entry]:  # type: ignore[valid-type]
        """Entries by their (lower-cased) word in `language`, the first listed for a word."""
        found: dict[str, Entry] = {}  # type: ignore[valid-type]
        for entry in self.entries:
            for word in entry.words(language):
                found.setdefault(word.lower(), entry)
        return found


def load_glossary(data_dir: Path) -> Glossary:
    return load_file(data_dir / "glossary.yaml", Glossary)


GLOSSARY = load_glossary(DATA_DIR)
BY_ZH: dict[str, Entry] = GLOSSARY.by_zh
BY_EN: dict[str, Entry] = GLOSSARY.by_en
ZH_TO_EN: dict[str, str] = {zh: entry.en for zh, entry in BY_ZH.items()}
EN_TO_ZH: dict[str, str] = {en: entry.zh for en, entry in BY_EN.items()}
# The other languages' columns, by their word (lower case).
BY_LANGUAGE: dict[ScriptLanguage, dict[str, Entry]] = {  # type: ignore[valid-type]
    code: GLOSSARY.by_language(code) for code in OTHER_LANGUAGES
}

# Inflected forms a Latin-script prompt may use for a glossary word: plural and feminine endings
# taken off or put on (perros → perro, chatons → chaton, Kätzchen, Läuferinnen → Läuferin).
_LATIN_ENDINGS: dict[ScriptLanguage, tuple[str, ...]] = {
    "es": ("s", "es", "a", "as"),
    "fr": ("s", "x", "e", "es"),
    "de": ("n", "en", "e", "er", "s", "nen"),
}
# A compound's head: the shortest glossary word a longer Japanese or German word ends with
# (市民ランナー → ランナー, Schokoladenkuchen → Kuchen) gives the compound its kind.
MIN_HEAD_CHARS: dict[ScriptLanguage, int] = {"ja": 2, "de": 4}


def lookup(word: str, language: ScriptLanguage) -> Entry | None:  # type: ignore[valid-type]
    """The glossary entry `word` (a prompt's word in a ja/ko/es/fr/de prompt) names: as written,
    else with a plural or feminine ending taken off or put on (es, fr, de)."""
    table = BY_LANGUAGE[language]
    lowered = word.lower()
    if lowered in table:
        return table[lowered]
    for ending in _LATIN_ENDINGS.get(language, ()):
        for candidate in (lowered.removesuffix(ending), lowered + ending):
            if candidate != lowered and len(candidate) > 2 and candidate in table:
                return table[candidate]
    return None


def head_of(word: str, language: ScriptLanguage) -> Entry | None:  # type: ignore[valid-type]
    """The entry a Japanese or German compound ends with (its head), the longest such word of
    at least MIN_HEAD_CHARS, shorter than the compound; None for other languages."""
    least = MIN_HEAD_CHARS.get(language)
    if least is None:
        return None
    lowered = word.lower()
    for start in range(1, len(lowered) - least + 1):
        entry = BY_LANGUAGE[language].get(lowered[start:])
        if entry is not None:
            return entry
    return None


def phrases(language: ScriptLanguage) -> tuple[str, ...]:
    """The glossary's words of several space-separated parts in `language`, longest first
    (fin de semana, 비 오는 날): matched in a prompt before its words are split."""
    return _PHRASES[language]


_PHRASES: dict[ScriptLanguage, tuple[str, ...]] = {
    code: tuple(sorted((w for w in BY_LANGUAGE[code] if " " in w), key=len, reverse=True))
    for code in OTHER_LANGUAGES
}
