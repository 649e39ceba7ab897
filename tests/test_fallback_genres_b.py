"""The nature, animals, sports and education fallback genres (issue 17): the prompt picks the
genre, its subject word shows up in the lines, each line stays in its language, and English
never makes a verb agree with a slot ("honeybees is")."""

from __future__ import annotations

import re

import pytest
import yaml

from deployments.storyboard.content import DATA_DIR
from deployments.storyboard.fallback import build_fallback_script
from deployments.storyboard.fallback.builder import choose_genre
from deployments.storyboard.language import cjk_count
from deployments.storyboard.models import ScriptRequest, VideoScript
from deployments.storyboard.quality import foreign_fragments
from deployments.storyboard.slots import SLOT

GENRES = ("nature", "animals", "sports", "education")

# (prompt, genre, the subject as a Chinese line writes it, as an English line writes it)
CASES = [
    ("A documentary about honeybees and how they make honey", "animals", "蜜蜂", "honeybees"),
    ("制作一段关于森林探险的短视频", "nature", "森林", "forest"),
    ("雪山日出", "nature", "雪山", "snow mountain"),
    ("大熊猫的一天", "animals", "大熊猫", "giant panda"),
    ("篮球训练营的热血时刻", "sports", "篮球", "basketball"),
    ("A marathon runner's last mile", "sports", "马拉松", "marathon"),
    ("用动画讲解光合作用的原理", "education", "光合作用", "photosynthesis"),
    ("Whales migrating in the Pacific", "animals", "鲸鱼", "whale"),
    ("三分钟了解人工智能的历史", "education", "人工智能", "artificial intelligence"),
]


def lines(script: VideoScript) -> list[str]:
    """The lines a user reads: title, descriptions, actions and narrations (not visual prompts)."""
    return [script.title] + [
        text for s in script.scenes for text in (s.description, s.action, s.narration)
    ]


@pytest.mark.parametrize(("prompt", "genre", "zh", "en"), CASES)
def test_the_prompt_picks_the_genre(prompt: str, genre: str, zh: str, en: str):
    assert choose_genre(prompt).name == genre


@pytest.mark.parametrize(
    "prompt",
    [
        "纪录片：黑洞是怎么形成的",
        "A documentary on how black holes form",
        "Explain how photosynthesis works",
    ],
)
def test_documentary_about_a_science_idea_is_education(prompt: str):
    assert choose_genre(prompt).name == "education"


@pytest.mark.parametrize(
    "prompt", ["野生动物纪录片", "关于蜜蜂如何酿蜜的纪录片", "A nature documentary about wolves"]
)
def test_documentary_about_an_animal_is_animals(prompt: str):
    assert choose_genre(prompt).name == "animals"


@pytest.mark.parametrize(
    "prompt",
    ["A 20-second teaser for a running shoe", "新款跑鞋的产品广告", "A sneaker launch video"],
)
def test_running_shoe_ads_are_not_sports(prompt: str):
    assert choose_genre(prompt).name != "sports"


@pytest.mark.parametrize(("prompt", "genre", "zh", "en"), CASES)
@pytest.mark.parametrize("language", ["zh", "en"])
def test_subject_appears_in_the_lines_of_either_language(
    prompt: str, genre: str, zh: str, en: str, language: str
):
    for num_scenes in (None, 3, 8):
        request = ScriptRequest(prompt=prompt, language=language, num_scenes=num_scenes)
        script = build_fallback_script(request)
        text = " ".join(lines(script)[1:]).lower()  # the scenes, not only the title
        assert (zh if language == "zh" else en) in text, (prompt, language, num_scenes)
        assert all(en in scene.visual_prompt.lower() for scene in script.scenes), prompt


@pytest.mark.parametrize(("prompt", "genre", "zh", "en"), CASES)
@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_line_is_in_its_language(prompt: str, genre: str, zh: str, en: str, language: str):
    request = ScriptRequest(prompt=prompt, language=language, num_scenes=8)
    script = build_fallback_script(request)
    assert script.language == language
    assert foreign_fragments(request, script) == []
    if language == "en":
        assert not any(cjk_count(line) for line in lines(script))
    assert not any(cjk_count(scene.visual_prompt) for scene in script.scenes)


AGREEMENT = re.compile(r"\b(honeybees|whales|bees|the \w+s) (is|was|has)\b|\bis happening\b", re.I)


@pytest.mark.parametrize(
    "prompt",
    [case[0] for case in CASES]
    + ["A day with the bees in the garden", "Wolves hunting in the snow", "How volcanoes erupt"],
)
def test_english_never_makes_a_verb_agree_with_a_plural_subject(prompt: str):
    script = build_fallback_script(ScriptRequest(prompt=prompt, language="en", num_scenes=8))
    for line in lines(script):
        assert not AGREEMENT.search(line), line
        assert "{" not in line and "}" not in line, line


def templates(genre: str) -> dict:
    return yaml.safe_load((DATA_DIR / "genres" / f"{genre}.yaml").read_text(encoding="utf-8"))


def beats(data: dict) -> list[dict]:
    return [data["opening"], *data["development"], data["climax"], data["ending"]]


@pytest.mark.parametrize("genre", GENRES)
def test_templates_use_typed_slots_the_way_the_format_says(genre: str):
    data = templates(genre)
    assert data["subject_kind"] in ("place", "creature", "activity", "theme")
    assert all(weight > 0 for weight in data["cues"].values())
    assert len(data["development"]) >= 4
    for beat in beats(data):
        english = [beat["en"][part] for part in ("description", "action", "narration")]
        for text in [*english, beat["visual"]]:
            # an English slot brings its own article: never "the {subject}"
            assert not re.search(r"\b(the|a|an) \{", text, re.I), text
        for text in [*english, *beat["zh"].values(), beat["visual"]]:
            assert "{detail}" not in text, text
        # the video model always sees the prompt's subject or one of its typed words
        assert any(name != "topic" for name, _ in SLOT.findall(beat["visual"])), beat["visual"]
