"""The storyboard's content files (deployments/storyboard/data/): the real ones load, everything
in them is reachable, a broken copy fails naming its file and key, and a new genre is a new file."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployments.storyboard.constants import Camera
from deployments.storyboard.content import DATA_DIR, ContentError
from deployments.storyboard.fallback.builder import choose_genre, choose_style, plan_arc
from deployments.storyboard.fallback.glossary import EN_TO_ZH, ZH_TO_EN, load_glossary
from deployments.storyboard.fallback.keywords import STOP_WORDS_EN, load_word_lists
from deployments.storyboard.fallback.library import (
    GENERAL,
    GENRES,
    VARIATIONS,
    load_genres,
    load_variations,
)
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.prompts import build_messages
from deployments.storyboard.styles import STYLES, find_style, load_styles

Data = dict[str, Any]


def load_all(data_dir: Path) -> None:
    styles = load_styles(data_dir)
    load_genres(data_dir, styles)
    load_variations(data_dir)
    load_glossary(data_dir)
    load_word_lists(data_dir)


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(DATA_DIR, copy)
    return copy


def edit(path: Path, change: Callable[[Data], object]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_the_real_content_loads_in_priority_order():
    load_all(DATA_DIR)
    assert [genre.name for genre in GENRES] == [
        "food", "product", "city", "education", "sports", "animals", "story", "vlog", "travel",
        "nature", "general",
    ]  # fmt: skip
    assert GENERAL.name == "general" and not GENERAL.cues
    assert list(STYLES) == [
        "cinematic", "documentary", "vlog", "anime", "commercial", "minimalist", "retro",
        "cyberpunk", "epic",
    ]  # fmt: skip
    assert len(VARIATIONS) == 8
    assert {"the", "video", "one-minute"} <= STOP_WORDS_EN


def test_glossary_keeps_the_last_english_and_the_first_chinese():
    assert ZH_TO_EN["樱花"] == "cherry blossoms"  # listed twice: the last one wins
    assert EN_TO_ZH["adventure"] == "探险"  # 探险 and 冒险 both say adventure: the first wins
    assert EN_TO_ZH["kyoto"] == "京都"  # English is looked up lower-cased


def test_every_genre_is_reachable_by_one_of_its_cues():
    for genre in GENRES:
        if genre is GENERAL:
            assert choose_genre("x") is GENERAL
        else:
            assert any(choose_genre(cue) is genre for cue in genre.cues), genre.name


def test_every_style_is_reachable_by_its_name_and_each_alias():
    for style in STYLES.values():
        for name in style.names:
            assert find_style(f"  {name.upper()} ") is style
            assert choose_style(name, "", GENERAL) is style
        for language in ("zh", "en"):
            request = ScriptRequest(prompt="森林", style=style.aliases[-1], language=language)
            assert style.guide.in_language(language) in build_messages(request)[1]["content"]
    assert find_style("watercolor") is None
    assert choose_style("watercolor", "", GENERAL).visual.startswith("watercolor style, ")


# (file, change, key and message the error must name)
BROKEN: list[tuple[str, Callable[[Data], object], str]] = [
    (
        "genres/food.yaml",
        lambda d: d["development"][2].update(camera="widest shot"),
        "food.yaml: development.2.camera: Input should be 'wide shot'",
    ),
    (
        "genres/nature.yaml",
        lambda d: d["opening"]["en"].update(narration="Welcome to {place}"),
        "nature.yaml: opening.en.narration: Value error, {place|...} needs a default",
    ),
    (
        "genres/travel.yaml",
        lambda d: d["ending"].update(visual="{sujbect} at dusk"),
        "travel.yaml: ending.visual: Value error, unknown slot {sujbect}",
    ),
    (
        "genres/story.yaml",
        lambda d: d["title"].update(zh="{topic|故事}的故事"),
        "story.yaml: title.zh: Value error, {topic} takes no default",
    ),
    (
        "genres/sports.yaml",
        lambda d: d["climax"]["zh"].pop("action"),
        "sports.yaml: climax.zh.action: Field required",
    ),
    (
        "genres/animals.yaml",
        lambda d: d.update(default_style="noir"),
        "animals.yaml: default_style: Value error, unknown style 'noir'",
    ),
    (
        "genres/product.yaml",
        lambda d: d.update(development=[]),
        "product.yaml: development: Tuple should have at least 1 item",
    ),
    (
        "genres/education.yaml",
        lambda d: d["opening"].update(visual="教室 at dawn, {subject}"),
        "education.yaml: opening.visual: Value error, must be English",
    ),
    (
        "genres/food.yaml",
        lambda d: d.update(cues={"pizza": 2, "Pizza": 1}),
        "food.yaml: cues.Pizza.[key]: Value error, must be lower case",
    ),
    (
        "genres/food.yaml",
        lambda d: d.update(colour="red"),
        "food.yaml: colour: Extra inputs are not permitted",
    ),
    (
        "genres/food.yaml",
        lambda d: d.update(name="cooking"),
        "food.yaml: name: comes from the file name",
    ),
    (
        "genres/food.yaml",
        lambda d: d.update(priority=20),
        "product.yaml: priority: 20 is also 'food'",
    ),
    (
        "genres/food.yaml",
        lambda d: d.update(cues=[]),
        "genres: exactly one genre must have no cues; found food, general",
    ),
    (
        "styles.yaml",
        lambda d: d["styles"][6]["aliases"].append("film"),
        "styles.yaml: styles.6.aliases.5: 'film' already names style 'cinematic'",
    ),
    (
        "styles.yaml",
        lambda d: d["styles"][1].update(name="epic"),
        "styles.yaml: styles.8.name: 'epic' already names style 'epic'",
    ),
    (
        "styles.yaml",
        lambda d: d["styles"][0].update(cameras=["wide shot", "dolly zoom"]),
        "styles.yaml: styles.0.cameras.1: Input should be 'wide shot'",
    ),
    (
        "styles.yaml",
        lambda d: d["styles"][3]["guide"].pop("en"),
        "styles.yaml: styles.3.guide.en: Field required",
    ),
    (
        "variations.yaml",
        lambda d: d["variations"][1].update(visual=""),
        "variations.yaml: variations.1.visual: String should match pattern",
    ),
    (
        "glossary.yaml",
        lambda d: (d.clear(), d.update(entries=[{"zh": "forest", "en": "森林"}])),
        "glossary.yaml: entries.0.zh: Value error, must be a Chinese word",
    ),
    (
        "keywords.yaml",
        lambda d: d.pop("stop_words_en"),
        "keywords.yaml: stop_words_en: Field required",
    ),
]


@pytest.mark.parametrize(("file", "change", "expected"), BROKEN)
def test_a_broken_file_fails_naming_the_file_and_the_key(
    data_copy: Path, file: str, change: Callable[[Data], object], expected: str
):
    edit(data_copy / file, change)
    with pytest.raises(ContentError) as caught:
        load_all(data_copy)
    assert expected in str(caught.value)
    assert str(data_copy / Path(file).parent) in str(caught.value)


def test_a_yaml_syntax_error_names_the_file(data_copy: Path):
    path = data_copy / "genres" / "food.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\n  oops: [unclosed\n", encoding="utf-8")
    with pytest.raises(ContentError, match=r"food\.yaml: "):
        load_all(data_copy)


def test_adding_a_genre_is_adding_a_file(data_copy: Path):
    pottery = data_copy / "genres" / "pottery.yaml"
    shutil.copy(data_copy / "genres" / "food.yaml", pottery)
    edit(pottery, lambda d: d.update(priority=5, cues=["陶艺", "陶瓷", "pottery", "ceramic"]))
    library = load_genres(data_copy, STYLES)

    assert [genre.name for genre in library.genres][:2] == ["pottery", "food"]
    assert choose_genre("a pottery workshop", library).name == "pottery"
    assert choose_genre("周末陶艺课", library).name == "pottery"
    assert choose_genre("a pottery workshop").name == "general"  # the real library is untouched
    arc = plan_arc(library.genres[0], 6)
    assert all(isinstance(shot.beat.camera, Camera) for shot in arc) and len(arc) == 6
