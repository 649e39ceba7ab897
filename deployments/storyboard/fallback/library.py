"""The fallback's template library, loaded from data/genres/*.yaml and data/variations.yaml.

A genre is a scene arc of beats (opening, development, climax, ending); a beat is one shot written
in every script language (constants.SCRIPT_LANGUAGES), with typed slots (storyboard/slots.py):
`{topic}`, `{subject}` and `{KIND|default}`, filled in the text's language (visuals: English).
One file per genre, named after it; a new file is a new genre.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field, PositiveFloat, StrictInt, ValidationInfo, create_model, field_validator

from deployments.storyboard.constants import SCRIPT_LANGUAGES, Camera, ScriptLanguage, TermKind
from deployments.storyboard.content import (
    DATA_DIR,
    FIXED_TEXT,
    SLOT_TEXT,
    ContentError,
    ContentModel,
    EnglishSlotText,
    FixedEnglish,
    LowerWord,
    content_error,
    load_file,
    per_language,
)
from deployments.storyboard.styles import STYLES, Style

Visual = EnglishSlotText  # English, for the text-to-video model


class SceneTexts(ContentModel):
    """A beat's description, action and narration in one language."""

    @property
    def parts(self) -> tuple[str, str, str]:
        return self.description, self.action, self.narration  # type: ignore[attr-defined]


TEXTS: dict[ScriptLanguage, type[SceneTexts]] = {
    code: create_model(  # type: ignore[call-overload]
        f"SceneTexts_{code}",
        __base__=SceneTexts,
        description=(SLOT_TEXT[code], ...),
        action=(SLOT_TEXT[code], ...),
        narration=(SLOT_TEXT[code], ...),
    )
    for code in SCRIPT_LANGUAGES
}
ZhTexts, EnTexts = TEXTS["zh"], TEXTS["en"]


class _BeatBase(ContentModel):
    def texts(self, language: ScriptLanguage) -> SceneTexts:
        return getattr(self, language)


# One shot: its camera, its texts in every script language, and its English visual prompt.
Beat = per_language("Beat", TEXTS, _BeatBase, camera=(Camera, ...))
Beat = create_model("Beat", __base__=Beat, visual=(Visual, ...))  # type: ignore[call-overload]


class _PerLanguage(ContentModel):
    def in_language(self, language: ScriptLanguage) -> str:
        return getattr(self, language)


Titles = per_language("Titles", SLOT_TEXT, _PerLanguage)
# The topic's stand-in when the prompt's words do not translate into the script's language.
Topics = per_language("Topics", FIXED_TEXT, _PerLanguage)


class Genre(ContentModel):
    name: LowerWord  # the file's name
    priority: StrictInt  # when two genres' cues weigh the same, the lower priority wins
    # Phrase → weight: Chinese substrings, English words (stems of 4+ letters as prefixes) or
    # consecutive words. A plain list weighs every cue 1.
    cues: dict[LowerWord, PositiveFloat] = Field(default_factory=dict)
    subject_kind: TermKind  # the kind of prompt keyword {subject} takes
    topic: Topics  # stands in for a topic without words in the script's language
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


# Added to the description after "，" (zh), "、" (ja) or ", "; `visual` to the visual prompt.
Variation = per_language("Variation", FIXED_TEXT, _PerLanguage, visual=(FixedEnglish, ...))


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
