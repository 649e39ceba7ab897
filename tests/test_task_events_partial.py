"""Scenes read from a storyboard reply while it is generated (deployments/storyboard/partial.py)."""

from __future__ import annotations

import json
import random

import pytest

from deployments.storyboard.constants import MAX_SCENE_SECONDS
from deployments.storyboard.fallback import fallback_script_json
from deployments.storyboard.lengths import planned_duration
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.parser import DraftScenes, parse_script
from deployments.storyboard.partial import PartialScenes


def reply(prompt: str, **dumps) -> tuple[str, list[dict]]:
    script = fallback_script_json(ScriptRequest(prompt=prompt, num_scenes=4))
    return json.dumps(script, ensure_ascii=False, **dumps), script["scenes"]


@pytest.mark.parametrize("indent", [None, 2])
def test_each_scene_comes_out_exactly_when_its_closing_brace_arrives(indent):
    text, scenes = reply("制作一段关于森林探险的短视频", indent=indent)
    partial = PartialScenes()
    ends = []  # offset of the character that completed each scene
    for offset, char in enumerate(text):
        if partial.feed(char):
            ends.append(offset)
    assert partial.scenes == scenes
    for end in ends:
        assert text[end] == "}"
    # Before a scene's last character, fewer scenes are known: nothing comes early.
    for number, end in enumerate(ends):
        early = PartialScenes()
        early.feed(text[:end])
        assert len(early.scenes) == number


def test_any_split_of_the_reply_gives_the_same_scenes():
    text, scenes = reply("A short video about a rainy day in Tokyo")
    chooser = random.Random(7)
    for _ in range(20):
        partial, start = PartialScenes(), 0
        while start < len(text):
            end = start + chooser.randint(1, 40)
            partial.feed(text[start:end])
            start = end
        assert partial.scenes == scenes


def test_braces_quotes_and_escapes_inside_strings_do_not_confuse_it():
    scenes = [
        {"scene_number": 1, "narration": 'a "quoted" {brace} and ] bracket \\ backslash'},
        {"scene_number": 2, "narration": "unicode \u00e9 and \\u005c escapes", "x": {"y": [1]}},
    ]
    text = "```json\n" + json.dumps({"title": "t}", "scenes": scenes, "after": [{"no": 1}]})
    partial = PartialScenes()
    found = [scene for char in text for scene in partial.feed(char)]
    assert found == scenes  # not the object after the array, not the nested one


def test_only_the_top_level_scenes_array_counts_and_an_unfinished_scene_is_not_given():
    text = '{"meta": {"scenes": [{"no": 1}]}, "scenes": [{"scene_number": 1}, {"scene_nu'
    partial = PartialScenes()
    assert partial.feed(text) == [{"scene_number": 1}]
    assert partial.feed('mber": 2}]}') == [{"scene_number": 2}]


def test_draft_scenes_are_the_parsers_scenes_but_for_their_durations():
    request = ScriptRequest(
        prompt="制作一段关于森林探险的短视频",
        num_scenes=4,
        visual_style="watercolor",
        characters=[{"name": "Lin", "description": "a girl in a red raincoat"}],
    )
    script = fallback_script_json(request)
    # as a model might write it: no look yet, its own durations, one scene with a bad camera
    for scene in script["scenes"]:
        scene["visual_prompt"] = "forest trail, morning light"
        scene["duration"] = 99
    script["scenes"][1]["camera"] = "手持"
    text = json.dumps(script, ensure_ascii=False)
    partial, draft = PartialScenes(), DraftScenes(request)
    drafted = [draft.add(raw) for piece in text for raw in partial.feed(piece)]
    final = parse_script(text, request).scenes
    assert len(drafted) == len(final) == 4
    for made, parsed in zip(drafted, final, strict=True):
        assert made.model_dump(exclude={"duration"}) == parsed.model_dump(exclude={"duration"})
        assert made.duration == MAX_SCENE_SECONDS  # the model's 99, clamped
    assert "watercolor" in final[0].visual_prompt
    assert sum(scene.duration for scene in final) == planned_duration(None, 4)


def test_a_draft_scene_without_a_description_is_skipped_as_the_parser_skips_it():
    draft = DraftScenes(None)
    assert draft.add({"camera": "wide shot", "duration": 5}) is None
    assert draft.add("not a scene object") is not None  # a bare string is a description
    assert draft.add({"description": "雨中的森林", "duration": 5}).scene_number == 2
