"""The fallback's template library, loaded from data/genres/*.yaml and data/variations.yaml.

A genre is a scene arc of beats (opening, development, climax, ending); a beat is one shot written
in both languages, with typed slots (storyboard/slots.py): `{topic}`, `{subject}` and
`{KIND|default}`, filled in the text's language (visuals: English). One file per genre, named
after it; a new file is a new genre.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field, PositiveFloat, StrictInt, ValidationInfo, field_validator

from deployments.storyboard.constants import Camera, TermKind
from deployments.storyboard.content import (
    DATA_DIR,
    ContentError,
    ContentModel,
    EnglishSlotText,
    FixedEnglish,
    FixedText,
    LowerWord,
    SlotText,
    content_error,
    load_file,
)
from deployments.storyboard.styles import STYLES, Style

SceneText = SlotText
EnglishSceneText = EnglishSlotText
Visual = EnglishSlotText  # English, for the text-to-video model
Title = SlotText
EnglishTitle = EnglishSlotText


class ZhTexts(ContentModel):
    description: SceneText
    action: SceneText
    narration: SceneText

    @property
    def parts(self) -> tuple[str, str, str]:
        return self.description, self.action, self.narration


class EnTexts(ZhTexts):
    description: EnglishSceneText
    action: EnglishSceneText
    narration: EnglishSceneText


class Beat(ContentModel):
    camera: Camera
    zh: ZhTexts
    en: EnTexts
    visual: Visual  # English, for the text-to-video model


class Titles(ContentModel):
    zh: Title
    en: EnglishTitle


class Genre(ContentModel):
    name: LowerWord  # the file's name
    priority: StrictInt  # when two genres' cues weigh the same, the lower priority wins
    # Phrase → weight: Chinese substrings, English words (stems of 4+ letters as prefixes) or
    # consecutive words. A plain list weighs every cue 1.
    cues: dict[LowerWord, PositiveFloat] = Field(default_factory=dict)
    subject_kind: TermKind  # the kind of prompt keyword {subject} takes
    subject_en: FixedEnglish  # stands in for a topic without English words
    topic_zh: FixedText  # stands in for a topic without Chinese words
    title: Titles
    default_style: str
    opening: Beat
    development: Annotated[tuple[Beat, ...], Field(min_length=1)]
    climax: Beat
    ending: Beat

    @field_validator("cues", mode="before")
    @classmethod
    def _list_weighs_one(cls, cues: object) -> object:
        return dict.fromkeys(cues, 1.0) if isinstance(cues, list | tuple) else cues

    @field_validator("default_style")
    @classmethod
    def _known_style(cls, name: str, info: ValidationInfo) -> str:
        styles = info.context["styles"]
        if name not in styles:
            raise ValueError(f"unknown style {name!r}; known: {', '.join(styles)}")
        return name


class Variation(ContentModel):
    zh: FixedText  # added after "，"
    en: FixedEnglish  # added after ", "
    visual: FixedEnglish


class _VariationFile(ContentModel):
    variations: Annotated[tuple[Variation, ...], Field(min_length=1)]


@dataclass(frozen=True)
class GenreLibrary:
    genres: tuple[Genre, ...]  # by priority
    general: Genre  # the one without cues: chosen when the prompt matches no cue


def load_genres(data_dir: Path, styles: Mapping[str, Style]) -> GenreLibrary:
    """Every data_dir/genres/*.yaml; priorities differ and exactly one genre has no cues."""
    folder = data_dir / "genres"
    paths = sorted(folder.glob("*.yaml"))
    if not paths:
        raise ContentError(f"{folder}: no genre files (*.yaml)")
    genres = [load_file(path, Genre, {"styles": styles}, name=path.stem) for path in paths]
    owners: dict[int, str] = {}
    for path, genre in zip(paths, genres, strict=True):
        if genre.priority in owners:
            owner = owners[genre.priority]
            message = f"{genre.priority} is also {owner!r}'s; priorities break ties, so must differ"
            raise content_error(path, "priority", message)
        owners[genre.priority] = genre.name
    general = [genre.name for genre in genres if not genre.cues]
    if len(general) != 1:
        found = ", ".join(general) or "none"
        raise ContentError(f"{folder}: exactly one genre must have no cues; found {found}")
    ordered = tuple(sorted(genres, key=lambda genre: genre.priority))
    return GenreLibrary(ordered, next(genre for genre in ordered if not genre.cues))


def load_variations(data_dir: Path) -> tuple[Variation, ...]:
    return load_file(data_dir / "variations.yaml", _VariationFile).variations


LIBRARY = load_genres(DATA_DIR, STYLES)
GENRES = LIBRARY.genres
GENERAL = LIBRARY.general
# Extra angles that keep long scripts' repeated development beats distinct.
VARIATIONS = load_variations(DATA_DIR)
