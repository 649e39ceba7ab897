"""The lexicon (data/glossary.yaml): Chinese ↔ English words with the kind of thing each names,
so a Chinese prompt's subject reaches English lines and visual prompts, and a keyword only fills
template slots of its kind.

Covers the subjects short videos are usually about; a word outside it keeps the kind its part of
speech suggests, and a line in the other language uses the slot's default instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, create_model

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
        return getattr(self, language)


Entry = create_model(  # type: ignore[call-overload]
    "Entry",
    __base__=_EntryBase,
    **{code: (FIXED_TEXT[code] | None, None) for code in OTHER_LANGUAGES},
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
            word = entry.word(language)
            if word:
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
