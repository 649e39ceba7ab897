"""The one style registry (data/styles.yaml): what the model is told about a style (`guide`) and
how the fallback draws it (`visual`, `cameras`), under one name and its aliases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from deployments.storyboard.constants import Camera, ScriptLanguage
from deployments.storyboard.content import (
    DATA_DIR,
    FIXED_TEXT,
    ContentModel,
    FixedEnglish,
    LowerWord,
    content_error,
    load_file,
    per_language,
)


class _GuideBase(ContentModel):
    def in_language(self, language: ScriptLanguage) -> str:
        return getattr(self, language)


# The style described to the model, in every script language.
Guide = per_language("Guide", FIXED_TEXT, _GuideBase)


class Style(ContentModel):
    name: LowerWord
    aliases: tuple[LowerWord, ...] = ()  # Chinese substrings or English words, besides the name
    visual: FixedEnglish  # modifiers appended to every fallback visual prompt
    cameras: Annotated[tuple[Camera, ...], Field(min_length=1)]  # rotation for repeated shots
    guide: Guide  # type: ignore[valid-type]

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


class _StyleFile(ContentModel):
    styles: Annotated[tuple[Style, ...], Field(min_length=1)]


def load_styles(data_dir: Path) -> dict[str, Style]:
    """data_dir/styles.yaml by name, in file order; every name and alias names one style only."""
    path = data_dir / "styles.yaml"
    styles = load_file(path, _StyleFile).styles
    owners: dict[str, str] = {}
    for i, style in enumerate(styles):
        for j, name in enumerate(style.names):
            if name in owners:
                key = f"styles.{i}.name" if j == 0 else f"styles.{i}.aliases.{j - 1}"
                raise content_error(path, key, f"{name!r} already names style {owners[name]!r}")
            owners[name] = style.name
    return {style.name: style for style in styles}


def find_style(name: str) -> Style | None:
    """The known style called `name` (its name or an alias, in any case); None for another."""
    return _BY_NAME.get(name.strip().lower())


STYLES: dict[str, Style] = load_styles(DATA_DIR)
_BY_NAME = {name: style for style in STYLES.values() for name in style.names}
