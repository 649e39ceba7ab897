"""Narration that fits its scene's time (issue 13, item 2): the budget, how lines are measured,
and the fallback writing within it without cutting a clause."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployments.storyboard.constants import (
    EN_NARRATION_WORDS_PER_SECOND,
    ZH_NARRATION_CHARS_PER_SECOND,
)
from deployments.storyboard.fallback import build_fallback_script
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.narration import (
    fit_narration,
    narration_budget,
    narration_fits,
    shortenings,
    spoken_length,
)
from deployments.storyboard.prompts import build_messages
from deployments.storyboard.quality import slot_misfits

PROMPTS = [
    case["prompt"]
    for case in json.loads(
        (Path(__file__).parent / "data" / "genre_prompts.json").read_text(encoding="utf-8")
    )
]


def test_the_budget_is_the_documented_rate():
    assert (ZH_NARRATION_CHARS_PER_SECOND, EN_NARRATION_WORDS_PER_SECOND) == (5, 3)
    assert narration_budget(6, "zh") == 30 and narration_budget(6, "en") == 18
    assert narration_budget(1.5, "zh") == 7 and narration_budget(1.5, "en") == 4


def test_lines_are_measured_in_hanzi_or_words():
    assert spoken_length("一份好味道，从挑选原料开始。", "zh") == 12  # punctuation is silent
    assert spoken_length("Great flavor starts with choosing well.", "en") == 6
    assert spoken_length("It's a 5-star day", "en") == 4
    assert spoken_length("欢迎来到Kyoto", "zh") == 5  # an English word counts as one


@pytest.mark.parametrize(
    ("line", "language", "seconds", "fitted"),
    [
        ("一份好味道，从挑选原料开始。", "zh", 5, "一份好味道，从挑选原料开始。"),
        ("一份好味道，从挑选原料开始。", "zh", 1, "一份好味道。"),
        ("一份好味道，从挑选原料开始。", "zh", 0.5, ""),
        (
            "Everyone carries a story. This one: lost umbrella.",
            "en",
            2,
            "Everyone carries a story.",
        ),
        (
            "What stays is a sense of warmth; next time, Kyoto will have a story.",
            "en",
            2.5,
            "What stays is a sense of warmth.",
        ),
        ("If not now, it will be too late.", "en", 1, ""),  # an English comma ends no clause
    ],
)
def test_a_long_line_keeps_whole_sentences_or_clauses(line, language, seconds, fitted):
    assert fit_narration(line, seconds, language) == fitted
    assert narration_fits(fitted, seconds, language)


def test_shortenings_are_leading_whole_pieces_longest_first():
    line = "每个人心里都有一个故事。这一个，关于机器人学会画画。"
    assert shortenings(line, "zh") == [line, "每个人心里都有一个故事。"]
    assert shortenings("", "en") == [""]


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize(("duration_s", "num_scenes"), [(30, None), (10, 5), (5, 5), (20, 20)])
def test_the_fallback_narration_fits_every_scene(language, duration_s, num_scenes):
    for prompt in PROMPTS:
        request = ScriptRequest(
            prompt=prompt, language=language, duration_s=duration_s, num_scenes=num_scenes
        )
        script = build_fallback_script(request)
        for scene in script.scenes:
            assert narration_fits(scene.narration, scene.duration, language), (prompt, scene)
        assert slot_misfits(request, script) == []  # shortened lines still read as written


def test_a_default_script_keeps_most_of_its_narration():
    spoken = [
        scene.narration
        for prompt in PROMPTS
        for scene in build_fallback_script(ScriptRequest(prompt=prompt)).scenes
    ]
    assert sum(bool(line) for line in spoken) == len(spoken)


@pytest.mark.parametrize(
    ("prompt", "rate"), [("森林探险", "每秒不超过 5 个字"), ("a forest", "3 words")]
)
def test_the_model_is_told_the_rate(prompt: str, rate: str):
    assert rate in build_messages(ScriptRequest(prompt=prompt))[1]["content"]
