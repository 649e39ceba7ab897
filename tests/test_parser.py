"""parse_script against a corpus of broken model replies, plus its normalization rules."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from deployments.storyboard.constants import DEFAULT_DURATION_S, MAX_SCENE_SECONDS, Camera
from deployments.storyboard.language import cjk_count
from deployments.storyboard.models import ScriptRequest, VideoScript
from deployments.storyboard.parser import (
    ScriptParseError,
    camera_from_text,
    parse_script,
    seconds_from_value,
)

CORPUS = Path(__file__).parent / "data" / "malformed_outputs"
EXPECTED: dict[str, dict] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


def test_corpus_is_complete():
    files = {path.name for path in CORPUS.glob("*.txt")}
    assert files == set(EXPECTED)
    assert len(files) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_reply(name: str):
    text = (CORPUS / name).read_text(encoding="utf-8")
    expected = EXPECTED[name]
    if "error" in expected:
        with pytest.raises(ScriptParseError, match=expected["error"]):
            parse_script(text)
        return
    script = parse_script(text)
    assert VideoScript.model_validate(script.model_dump()) == script
    assert all(not cjk_count(scene.visual_prompt) for scene in script.scenes)
    checks = {
        "title": script.title,
        "language": script.language,
        "scene_count": len(script.scenes),
        "durations": [scene.duration for scene in script.scenes],
        "descriptions": [scene.description for scene in script.scenes],
        "narrations": [scene.narration for scene in script.scenes],
        "visual_prompts": [scene.visual_prompt for scene in script.scenes],
    }
    for field, actual in checks.items():
        if field in expected:
            assert actual == expected[field], field
    if "cameras" in expected:
        cameras = [scene.camera.value for scene in script.scenes]
        for want, got in zip(expected["cameras"], cameras, strict=True):
            assert want is None or want == got


def test_scenes_are_renumbered_and_total_recomputed():
    script = parse_script((CORPUS / "30_wrong_total.txt").read_text(encoding="utf-8"))
    assert [s.scene_number for s in script.scenes] == [1, 2]
    assert script.total_duration == 15


def test_missing_durations_share_what_the_request_has_left():
    text = '{"scenes": [{"description": "a", "duration": 10}, {"description": "b"}, {"desc": "c"}]}'
    script = parse_script(text, ScriptRequest(prompt="x", duration_s=30))
    assert [s.duration for s in script.scenes] == [10, 10, 10]


def test_durations_are_scaled_to_the_requested_total():
    scenes = [
        {"desc": "a", "duration": 6},
        {"desc": "b", "duration": 12},
        {"desc": "c", "duration": 9},
    ]
    text = json.dumps({"scenes": scenes})
    assert [s.duration for s in parse_script(text).scenes] == [6, 12, 9]
    scaled = parse_script(text, ScriptRequest(prompt="x", duration_s=30))
    assert [s.duration for s in scaled.scenes] == [6.5, 13.5, 10]
    assert scaled.total_duration == 30
    longest = parse_script(text, ScriptRequest(prompt="x", duration_s=3 * MAX_SCENE_SECONDS))
    assert [s.duration for s in longest.scenes] == [MAX_SCENE_SECONDS] * 3


def test_without_a_duration_the_scenes_add_up_to_the_default_the_prompt_asked_for():
    text = json.dumps({"scenes": [{"desc": "a", "duration": 6}, {"desc": "b", "duration": 7}]})
    script = parse_script(text, ScriptRequest(prompt="x"))
    assert script.total_duration == DEFAULT_DURATION_S
    assert [s.duration for s in script.scenes] == [14, 16]


def test_a_reply_whose_scenes_cannot_carry_the_total_is_not_a_script():
    text = json.dumps({"scenes": [{"desc": "a", "duration": 50}, {"desc": "b", "duration": 50}]})
    with pytest.raises(ScriptParseError, match="write 5 to 20 scenes") as error:
        parse_script(text, ScriptRequest(prompt="x", duration_s=300))
    assert "300 s" in error.value.reason


def test_language_follows_the_request_when_the_reply_omits_it():
    text = '{"title": "t", "scenes": [{"description": "a quiet street"}]}'
    assert parse_script(text, ScriptRequest(prompt="安静的街道")).language == "zh"
    assert parse_script(text).language == "en"


def test_missing_title_comes_from_the_request_topic():
    script = parse_script(
        '{"scenes": [{"description": "薄雾"}]}',
        ScriptRequest(prompt="制作一段关于森林探险的短视频"),
    )
    assert script.title == "森林探险"


def test_chinese_visual_prompt_is_rebuilt_in_english():
    script = parse_script((CORPUS / "28_chinese_visual_prompt.txt").read_text(encoding="utf-8"))
    assert "panda" in script.scenes[0].visual_prompt
    assert "medium shot" in script.scenes[0].visual_prompt


def test_unknown_cameras_never_repeat_back_to_back():
    script = parse_script((CORPUS / "23_unknown_camera.txt").read_text(encoding="utf-8"))
    cameras = [scene.camera for scene in script.scenes]
    assert all(a != b for a, b in itertools.pairwise(cameras))


@pytest.mark.parametrize(
    ("text", "camera"),
    [
        ("close up", Camera.CLOSE_UP),
        ("Extreme Close-Up", Camera.EXTREME_CLOSE_UP),
        ("bird's eye view", Camera.AERIAL_VIEW),
        ("panoramic view", Camera.WIDE_SHOT),
        ("特写", Camera.CLOSE_UP),
        ("大特写", Camera.EXTREME_CLOSE_UP),
        ("远景", Camera.WIDE_SHOT),
        ("航拍", Camera.AERIAL_VIEW),
        ("中近景", Camera.MEDIUM_SHOT),
        ("俯瞰", Camera.AERIAL_VIEW),
        ("第一人称视角", Camera.POINT_OF_VIEW),
        ("nonsense", None),
    ],
)
def test_camera_from_text(text: str, camera: Camera | None):
    assert camera_from_text(text) == camera


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(5, 5.0), ("5", 5.0), ("5.0", 5.0), ("5s", 5.0), ("5秒", 5.0), ("约 3.5 秒", 3.5),
     ("1分30秒", 90.0), ("0:05", 5.0), ("2 min", 120.0), ("soon", None), (True, None),
     (None, None)],
)  # fmt: skip
def test_seconds_from_value(value, seconds):
    assert seconds_from_value(value) == seconds
