"""The fallback storyboard: arc, variety, languages, and the request's duration and scene count."""

from __future__ import annotations

import itertools

import pytest

from deployments.storyboard.constants import MAX_SCENE_SECONDS
from deployments.storyboard.fallback import build_fallback_script
from deployments.storyboard.fallback.builder import choose_genre
from deployments.storyboard.language import cjk_count, detect_language, resolve_language
from deployments.storyboard.models import ScriptRequest, VideoScript

FOREST = "制作一段关于森林探险的短视频"


def test_forest_prompt_gives_a_chinese_storyboard_about_the_forest():
    script = build_fallback_script(ScriptRequest(prompt=FOREST))
    assert script.language == "zh"
    assert 3 <= len(script.scenes) <= 8
    assert script.total_duration == 30
    assert "森林" in script.title
    text = "".join(scene.description + scene.narration for scene in script.scenes)
    assert "森林" in text and "探险" in text
    assert all(cjk_count(scene.narration) for scene in script.scenes)
    assert all(not cjk_count(scene.visual_prompt) for scene in script.scenes)
    assert all("forest" in scene.visual_prompt for scene in script.scenes)


def test_scenes_are_distinct_and_never_the_prompt_repeated():
    script = build_fallback_script(ScriptRequest(prompt=FOREST, num_scenes=8))
    descriptions = [scene.description for scene in script.scenes]
    assert len(set(descriptions)) == len(descriptions)
    assert len({scene.narration for scene in script.scenes}) == len(descriptions)
    assert all(FOREST not in description for description in descriptions)


def test_cameras_vary_and_never_repeat_back_to_back():
    script = build_fallback_script(ScriptRequest(prompt="A day at the beach", num_scenes=12))
    cameras = [scene.camera for scene in script.scenes]
    assert len(set(cameras)) >= 5
    assert all(a != b for a, b in itertools.pairwise(cameras))


@pytest.mark.parametrize(
    ("num_scenes", "duration_s"),
    [(1, 5), (2, 10), (3, 7), (5, 30), (8, 60), (5, 5), (20, 20), (20, 300), (5, 300)],
)
def test_requested_scene_count_and_duration_are_honoured(num_scenes: int, duration_s: int):
    request = ScriptRequest(prompt="城市夜景", num_scenes=num_scenes, duration_s=duration_s)
    script = build_fallback_script(request)
    assert len(script.scenes) == num_scenes
    assert script.total_duration == duration_s
    assert sum(scene.duration for scene in script.scenes) == duration_s
    assert len({scene.description for scene in script.scenes}) == num_scenes


def test_the_longest_duration_a_scene_count_can_carry_fills_every_scene():
    request = ScriptRequest(prompt="sunrise", num_scenes=2, duration_s=2 * MAX_SCENE_SECONDS)
    assert [scene.duration for scene in build_fallback_script(request).scenes] == [60, 60]


def test_default_scene_count_follows_the_duration():
    counts = [
        len(build_fallback_script(ScriptRequest(prompt="hiking", duration_s=d)).scenes)
        for d in (5, 30, 45, 300)
    ]
    assert counts == [3, 5, 8, 8]


def test_arc_has_opening_development_climax_and_ending():
    script = build_fallback_script(ScriptRequest(prompt="marathon race", num_scenes=5))
    durations = [scene.duration for scene in script.scenes]
    assert max(durations) == durations[3]  # the climax holds longest
    assert "dawn" in script.scenes[0].description.lower()  # sports opens before dawn
    assert "tomorrow" in script.scenes[-1].narration.lower()


def test_language_override_writes_english_for_a_chinese_prompt():
    script = build_fallback_script(
        ScriptRequest(prompt="拍一个介绍成都美食火锅的视频", language="en")
    )
    assert script.language == "en"
    assert not cjk_count(script.title)
    assert all(not cjk_count(s.narration + s.description + s.action) for s in script.scenes)
    assert "hotpot" in script.scenes[-2].description.lower()


def test_language_override_writes_chinese_for_an_english_prompt():
    script = build_fallback_script(ScriptRequest(prompt="a cat and a dog", language="zh"))
    assert script.language == "zh"
    assert all(cjk_count(scene.narration) for scene in script.scenes)
    assert "猫" in script.title


@pytest.mark.parametrize(
    ("prompt", "genre"),
    [
        (FOREST, "nature"),
        ("记录上海外滩夜景的城市旅行视频", "travel"),
        ("拍一个介绍成都美食火锅的vlog", "food"),
        ("为新款智能手表制作30秒的产品宣传片", "product"),
        ("用动画讲解光合作用的原理", "education"),
        ("一个少年追逐梦想的励志故事", "story"),
        ("马拉松比赛冲线的热血瞬间", "sports"),
        ("猫咪的一天", "animals"),
        ("A recipe video for homemade ramen", "food"),
        ("Explain how black holes form", "education"),
        ("Launch video for our new wireless earbuds", "product"),
        ("A cartoon about cars", "product"),
        ("Quarterly report highlights", "general"),
    ],
)
def test_genre_follows_the_prompt(prompt: str, genre: str):
    assert choose_genre(prompt).name == genre


@pytest.mark.parametrize(
    ("style", "expected"),
    [("anime", "anime style"), ("动漫", "anime style"), ("documentary", "documentary"),
     ("watercolor", "watercolor style"), ("赛博朋克", "cyberpunk"), ("Vintage", "retro")],
)  # fmt: skip
def test_style_shapes_every_visual_prompt(style: str, expected: str):
    script = build_fallback_script(ScriptRequest(prompt=FOREST, style=style))
    assert all(expected in scene.visual_prompt for scene in script.scenes)


def test_style_named_in_the_prompt_is_used():
    script = build_fallback_script(ScriptRequest(prompt="用动画讲解光合作用的原理"))
    assert "anime style" in script.scenes[0].visual_prompt
    assert "photosynthesis" in script.scenes[0].visual_prompt


def test_same_request_same_script():
    request = ScriptRequest(prompt="Tokyo street food at night", num_scenes=6)
    assert build_fallback_script(request) == build_fallback_script(request)


def test_result_is_a_valid_video_script():
    script = build_fallback_script(ScriptRequest(prompt="x", num_scenes=20, duration_s=300))
    assert VideoScript.model_validate(script.model_dump()) == script


@pytest.mark.parametrize(
    ("text", "language"),
    [(FOREST, "zh"), ("A forest adventure", "en"), ("关于AI的视频", "zh"),
     ("A video about 北京", "en"), ("12345 !!!", "en"), ("森林", "zh")],
)  # fmt: skip
def test_detect_language(text: str, language: str):
    assert detect_language(text) == language


def test_resolve_language_prefers_the_explicit_choice():
    assert resolve_language(ScriptRequest(prompt=FOREST)) == "zh"
    assert resolve_language(ScriptRequest(prompt=FOREST, language="en")) == "en"
