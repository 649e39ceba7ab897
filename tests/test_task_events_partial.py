"""Scenes read from a storyboard reply while it is generated (deployments/storyboard/partial.py)."""

from __future__ import annotations

import json
import random

import pytest

from deployments.storyboard.fallback import fallback_script_json
from deployments.storyboard.models import ScriptRequest
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
