"""The lexicon (data/glossary.yaml): Chinese ↔ English words with the kind of thing each names,
so a Chinese prompt's subject reaches English lines and visual prompts, and a keyword only fills
template slots of its kind.

Covers the subjects short videos are usually about; a word outside it keeps the kind its part of
speech suggests, and a line in the other language uses the slot's default instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

from deployments.storyboard.constants import TermKind
from deployments.storyboard.content import DATA_DIR, ContentModel, EnglishWord, Word, load_file
from deployments.storyboard.language import cjk_count


def _chinese(word: str) -> str:
    if not cjk_count(word):
        raise ValueError("must be a Chinese word")
    return word


class Entry(ContentModel):
    zh: Annotated[Word, AfterValidator(_chinese)]
    en: EnglishWord  # lower case unless a name (Kyoto)
    kind: TermKind | None = None


class Glossary(ContentModel):
    """Entries in order: a Chinese word listed twice translates to its last English; an English
    word (any case) translates back to the first Chinese listed for it."""

    entries: tuple[Entry, ...]

    @property
    def by_zh(self) -> dict[str, Entry]:
        return {entry.zh: entry for entry in self.entries}

    @property
    def by_en(self) -> dict[str, Entry]:
        back: dict[str, Entry] = {}
        for entry in self.entries:
            back.setdefault(entry.en.lower(), entry)
        return back


def load_glossary(data_dir: Path) -> Glossary:
    return load_file(data_dir / "glossary.yaml", Glossary)


GLOSSARY = load_glossary(DATA_DIR)
BY_ZH: dict[str, Entry] = GLOSSARY.by_zh
BY_EN: dict[str, Entry] = GLOSSARY.by_en
ZH_TO_EN: dict[str, str] = {zh: entry.en for zh, entry in BY_ZH.items()}
EN_TO_ZH: dict[str, str] = {en: entry.zh for en, entry in BY_EN.items()}
