"""A small Chinese↔English word list (data/glossary.yaml), so visual prompts stay English for
Chinese requests.

Covers the subjects short videos are usually about; a word outside it simply does not reach the
English visual prompt (the genre's own English subject stands in).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

from deployments.storyboard.content import DATA_DIR, ContentModel, EnglishWord, Word, load_file
from deployments.storyboard.language import cjk_count


def _chinese(word: str) -> str:
    if not cjk_count(word):
        raise ValueError("must be a Chinese word")
    return word


class Glossary(ContentModel):
    """Pairs in order: a Chinese word listed twice translates to its last English; an English
    word (any case) translates back to the first Chinese listed for it."""

    pairs: tuple[tuple[Annotated[Word, AfterValidator(_chinese)], EnglishWord], ...]

    @property
    def zh_to_en(self) -> dict[str, str]:
        return dict(self.pairs)

    @property
    def en_to_zh(self) -> dict[str, str]:
        back: dict[str, str] = {}
        for zh, en in self.pairs:
            back.setdefault(en.lower(), zh)
        return back


def load_glossary(data_dir: Path) -> Glossary:
    return load_file(data_dir / "glossary.yaml", Glossary)


GLOSSARY = load_glossary(DATA_DIR)
ZH_TO_EN: dict[str, str] = GLOSSARY.zh_to_en
EN_TO_ZH: dict[str, str] = GLOSSARY.en_to_zh
