"""Characters, visual style and aspect ratio, given once and kept in every scene (issue 13, 1).

Both paths — the model's reply through the parser, and the fallback — end in storyboard.look,
so both guarantee that every visual prompt carries the style and each present character's look.
"""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from deployments.storyboard.constants import (
    ASPECT_RATIOS,
    DEFAULT_ASPECT_RATIO,
    MAX_CHARACTER_DESCRIPTION_CHARS,
    MAX_CHARACTER_NAME_CHARS,
    MAX_CHARACTERS,
    MAX_VISUAL_STYLE_CHARS,
)
from deployments.storyboard.fallback import build_fallback_script
from deployments.storyboard.look import apply_look
from deployments.storyboard.models import ScriptRequest, VideoScript
from deployments.storyboard.parser import parse_script
from deployments.storyboard.prompts import build_messages, script_json_schema

MIA = {"name": "Mia", "description": "a girl in a yellow raincoat, short black hair"}
LEO = {"name": "Leo", "description": "an old man with a grey beard and a walking stick"}
XIAOLIN = {"name": "小林", "description": "穿红色冲锋衣的年轻登山者"}
STYLE = "watercolor illustration, soft pastel palette"


def request_with_look(prompt: str, **fields) -> ScriptRequest:
    return ScriptRequest(
        prompt=prompt, characters=[MIA, LEO], visual_style=STYLE, aspect_ratio="9:16", **fields
    )


def look_is_in_every_scene(script: VideoScript, request: ScriptRequest) -> None:
    described = {c.name: c.description for c in request.characters}
    for scene in script.scenes:
        assert request.visual_style in scene.visual_prompt, scene
        for name in scene.characters:
            assert described[name] in scene.visual_prompt, (name, scene)
    assert script.aspect_ratio == request.aspect_ratio
    assert script.visual_style == request.visual_style
    assert script.characters == request.characters


# The request -------------------------------------------------------------------------------------
def test_defaults_leave_a_request_as_it_was():
    request = ScriptRequest(prompt="forest")
    assert (request.characters, request.visual_style) == ([], None)
    assert request.aspect_ratio == DEFAULT_ASPECT_RATIO == "16:9"
    assert set(ASPECT_RATIOS) == {"16:9", "9:16", "1:1", "4:3", "21:9"}


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"characters": [MIA] * 2}, ("characters",)),
        (
            {"characters": [{"name": f"c{i}", "description": "x"} for i in range(9)]},
            ("characters",),
        ),
        ({"characters": [{"name": "n" * 41, "description": "x"}]}, ("characters", 0, "name")),
        (
            {"characters": [{"name": "Mia", "description": "d" * 301}]},
            ("characters", 0, "description"),
        ),
        ({"characters": [{"name": "\u200b\u202e", "description": "x"}]}, ("characters", 0, "name")),
        ({"characters": [{"name": "Mia"}]}, ("characters", 0, "description")),
        ({"characters": [{**MIA, "age": 9}]}, ("characters", 0, "age")),
        ({"visual_style": "s" * 201}, ("visual_style",)),
        ({"visual_style": " \u200b "}, ("visual_style",)),
        ({"aspect_ratio": "3:2"}, ("aspect_ratio",)),
    ],
)
def test_bad_look_fields_are_refused_naming_the_field(fields: dict, where: tuple):
    with pytest.raises(ValidationError) as refused:
        ScriptRequest(prompt="forest", **fields)
    assert [error["loc"] for error in refused.value.errors()] == [where]


def test_limits_are_the_constants():
    assert (MAX_CHARACTERS, MAX_CHARACTER_NAME_CHARS) == (8, 40)
    assert (MAX_CHARACTER_DESCRIPTION_CHARS, MAX_VISUAL_STYLE_CHARS) == (300, 200)
    too_long = [{"name": "n" * (MAX_CHARACTER_NAME_CHARS + 1), "description": "d"}]
    with pytest.raises(ValidationError):
        ScriptRequest(prompt="x", characters=too_long)
    fits = [{"name": f"{i}" + "n" * 39, "description": "d" * 300} for i in range(8)]
    assert len(ScriptRequest(prompt="x", characters=fits, visual_style="v" * 200).characters) == 8


def test_scripts_stored_before_the_look_fields_still_read():
    old = {
        "title": "t",
        "language": "en",
        "total_duration": 5.0,
        "scenes": [
            {
                "scene_number": 1,
                "description": "d",
                "duration": 5.0,
                "camera": "wide shot",
                "action": "a",
                "narration": "n",
                "visual_prompt": "v",
            }
        ],
    }
    script = VideoScript.model_validate(old)
    assert (script.aspect_ratio, script.visual_style, script.characters) == ("16:9", None, [])
    assert script.scenes[0].characters == []


def test_a_scene_cannot_name_a_character_the_script_does_not_have():
    script = build_fallback_script(request_with_look("A short film about a lost umbrella"))
    data = script.model_dump(mode="json")
    data["scenes"][0]["characters"] = ["Stranger"]
    with pytest.raises(ValidationError, match="Stranger"):
        VideoScript.model_validate(data)


# The fallback ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prompt", "num_scenes"),
    [
        ("A short film about a lost umbrella", None),
        ("拍一个成都街头美食的探店vlog", 6),
        ("A 20-second teaser for a running shoe", 2),
        ("森林探险", 1),
        ("用动画讲解光合作用的原理", 12),
    ],
)
def test_the_fallback_carries_the_look_and_places_everyone(prompt: str, num_scenes: int | None):
    request = request_with_look(prompt, num_scenes=num_scenes)
    script = build_fallback_script(request)
    look_is_in_every_scene(script, request)
    casts = [scene.characters for scene in script.scenes]
    assert {name for cast in casts for name in cast} == {"Mia", "Leo"}  # everyone appears
    with_protagonist = sum("Mia" in cast for cast in casts)
    assert with_protagonist > len(casts) / 2  # in most scenes
    assert with_protagonist >= sum("Leo" in cast for cast in casts)


def test_the_protagonist_is_the_first_character():
    request = ScriptRequest(prompt="A short film about a lost umbrella", characters=[LEO, MIA])
    casts = [scene.characters for scene in build_fallback_script(request).scenes]
    assert sum("Leo" in cast for cast in casts) > sum("Mia" in cast for cast in casts)


def test_a_description_not_in_english_stays_as_given():
    request = ScriptRequest(prompt="森林探险", characters=[XIAOLIN])
    script = build_fallback_script(request)
    present = [scene for scene in script.scenes if scene.characters]
    assert present
    assert all("小林 (穿红色冲锋衣的年轻登山者)" in s.visual_prompt for s in present)


def test_without_a_look_the_fallback_writes_what_it_wrote_before():
    plain = build_fallback_script(ScriptRequest(prompt="森林探险"))
    assert all(scene.characters == [] for scene in plain.scenes)
    assert plain.visual_style is None


# The model's path --------------------------------------------------------------------------------
def reply(scenes: list[dict]) -> str:
    return json.dumps({"title": "Umbrella", "language": "en", "scenes": scenes})


def scene(description: str, **fields) -> dict:
    return {
        "description": description,
        "duration": 5,
        "camera": "wide shot",
        "action": "walks",
        "narration": "A quiet day.",
        "visual_prompt": "rainy street, wide shot",
        **fields,
    }


def test_the_parser_keeps_the_request_characters_a_scene_lists_or_names():
    request = request_with_look("A short film about a lost umbrella", num_scenes=4, duration_s=20)
    script = parse_script(
        reply(
            [
                scene("An empty street", characters=[]),
                scene("Mia looks for her umbrella"),  # named in its text
                scene("They meet", characters=["leo", "Mia", "Stranger"]),  # made-up name dropped
                scene("The two walk home", characters="Mia and Leo"),
            ]
        ),
        request,
    )
    assert [s.characters for s in script.scenes] == [[], ["Mia"], ["Mia", "Leo"], ["Mia", "Leo"]]
    look_is_in_every_scene(script, request)


def test_the_look_is_added_once_however_often_it_is_applied():
    request = request_with_look("A short film about a lost umbrella")
    script = build_fallback_script(request)
    assert apply_look(apply_look(script, request), request) == script
    for scene_ in script.scenes:
        assert scene_.visual_prompt.count(STYLE) == 1


def test_the_model_is_told_the_look_and_may_only_name_the_request_characters():
    request = request_with_look("A short film about a lost umbrella")
    user = build_messages(request)[1]["content"]
    for text in (STYLE, "9:16", MIA["name"], MIA["description"], LEO["description"]):
        assert text in user
    scene_schema = script_json_schema(request)["properties"]["scenes"]["items"]
    assert scene_schema["properties"]["characters"]["items"]["enum"] == ["Mia", "Leo"]
    assert "characters" in scene_schema["required"]
    plain = script_json_schema(ScriptRequest(prompt="forest"))
    assert "characters" not in plain["properties"]["scenes"]["items"]["properties"]
    assert "Characters" not in build_messages(ScriptRequest(prompt="forest"))[1]["content"]
