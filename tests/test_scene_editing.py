"""The storyboard's editing rules (deployments/storyboard/editing.py), without Ray or HTTP."""

import jsonschema
import pytest

from deployments.storyboard.constants import MAX_SCENES
from deployments.storyboard.editing import (
    EditError,
    SceneLimit,
    edited_scene,
    fallback_new_scene,
    fallback_scene_variant,
    new_scene,
    refine_messages,
    rewrite_scene_messages,
    scene_from_reply,
    scene_json_schema,
    typical_duration,
    with_look,
    with_scene,
    with_scene_inserted,
    without_scene,
)
from deployments.storyboard.fallback import fallback_script_json
from deployments.storyboard.models import ScriptRequest, VideoScript

EN = ScriptRequest(prompt="Street basketball at sunset", num_scenes=5, duration_s=30)
ZH = ScriptRequest(prompt="海边日落", num_scenes=3)


@pytest.fixture(params=[EN, ZH], ids=["en", "zh"])
def request_and_script(request):
    return request.param, fallback_script_json(request.param)


def others(script: dict, number: int) -> list[dict]:
    """The scenes other than `number`, without their numbers."""
    return [
        {k: v for k, v in scene.items() if k != "scene_number"}
        for scene in script["scenes"]
        if scene["scene_number"] != number
    ]


def test_a_patched_scene_keeps_its_other_fields_and_the_total_follows():
    script = fallback_script_json(EN)
    scene = edited_scene(script["scenes"][1], {"duration": 10, "narration": "New line."})
    edited = with_scene(script, 2, scene)
    VideoScript.model_validate(edited)
    assert edited["scenes"][1]["narration"] == "New line." and edited["scenes"][1]["duration"] == 10
    assert edited["scenes"][1]["description"] == script["scenes"][1]["description"]
    assert (
        edited["total_duration"] == script["total_duration"] - script["scenes"][1]["duration"] + 10
    )
    assert others(edited, 2) == others(script, 2)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"scene_number": 3}, "body.scene_number"),
        ({"colour": "red"}, "body.colour"),
        ({"duration": 0}, "body.duration"),
        ({"duration": 61}, "body.duration"),
        ({"camera": "dolly zoom"}, "body.camera"),
        ({"description": ""}, "body.description"),
        ({"narration": None}, "body.narration"),
    ],
)
def test_a_bad_field_is_named(changes, field):
    scene = fallback_script_json(EN)["scenes"][0]
    with pytest.raises(EditError) as raised:
        edited_scene(scene, changes)
    assert raised.value.field == field


def test_deleting_renumbers_and_the_last_scene_stays():
    script = fallback_script_json(EN)
    shorter = without_scene(script, 2)
    assert [s["scene_number"] for s in shorter["scenes"]] == [1, 2, 3, 4]
    assert others(shorter, 99) == others(script, 2)
    assert shorter["total_duration"] == script["total_duration"] - script["scenes"][1]["duration"]
    one = fallback_script_json(ScriptRequest(prompt="x", num_scenes=1))
    with pytest.raises(SceneLimit, match="last one"):
        without_scene(one, 1)


def test_inserting_moves_the_later_scenes_down_and_stops_at_the_most():
    script = fallback_script_json(EN)
    scene = new_scene({**script["scenes"][0], "scene_number": 42, "description": "Inserted"})
    longer = with_scene_inserted(script, 3, scene)
    assert [s["description"] for s in longer["scenes"]] == [
        *(s["description"] for s in script["scenes"][:2]),
        "Inserted",
        *(s["description"] for s in script["scenes"][2:]),
    ]
    assert [s["scene_number"] for s in longer["scenes"]] == list(range(1, 7))
    full = fallback_script_json(ScriptRequest(prompt="x", num_scenes=MAX_SCENES, duration_s=60))
    with pytest.raises(SceneLimit, match="most"):
        with_scene_inserted(full, 1, scene)
    with pytest.raises(EditError) as raised:
        new_scene({"description": "no camera"})
    assert raised.value.field.startswith("body.scene.")


def test_the_fallback_variant_is_another_beat_of_the_same_length(request_and_script):
    request, script = request_and_script
    for number in range(1, len(script["scenes"]) + 1):
        variant = fallback_scene_variant(request, script, number)
        current = script["scenes"][number - 1]
        assert variant["scene_number"] == number and variant["duration"] == current["duration"]
        assert variant["description"] not in {s["description"] for s in script["scenes"]}
        regenerated = with_scene(script, number, variant)
        assert regenerated["total_duration"] == script["total_duration"]
        assert others(regenerated, number) == others(script, number)
        # Again on the new script: again different from what is there.
        again = fallback_scene_variant(request, regenerated, number)
        assert again["description"] != variant["description"]


def test_a_new_fallback_scene_is_one_the_script_does_not_show(request_and_script):
    request, script = request_and_script
    duration = typical_duration(script)
    scene = fallback_new_scene(request, script, 2, duration)
    assert scene["description"] not in {s["description"] for s in script["scenes"]}
    assert scene["duration"] == duration
    VideoScript.model_validate(with_scene_inserted(script, 2, scene))


def test_the_scene_schema_is_the_storyboards_scene_without_its_number(request_and_script):
    request, script = request_and_script
    schema = scene_json_schema(request)
    assert "scene_number" not in schema["properties"]
    assert "scene_number" not in schema["required"]
    written = script["scenes"][0]
    scene = {name: written[name] for name in schema["required"]}
    scene.update(duration=5, visual_prompt="rain on an empty street, close up")
    jsonschema.validate(scene, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**scene, "scene_number": 1}, schema)


def test_the_prompts_carry_the_whole_script_the_place_and_the_instruction(request_and_script):
    request, script = request_and_script
    [system, user] = rewrite_scene_messages(request, script, 2, "make it rain")
    assert system["role"] == "system" and user["role"] == "user"
    assert all(scene["description"] in user["content"] for scene in script["scenes"])
    assert "make it rain" in user["content"] and "2" in user["content"]
    [_, refine] = refine_messages(request, script, "more humour")
    assert "more humour" in refine["content"] and script["title"] in refine["content"]


def test_a_scene_is_read_from_the_reply_or_refused_with_the_reason():
    scene = fallback_script_json(EN)["scenes"][0]
    reply = '{"description": "d", "duration": 7, "camera": "close up", "action": "a",'
    reply += ' "narration": "n", "visual_prompt": "v", "scene_number": 9}'
    assert scene_from_reply(reply, 3, None)["scene_number"] == 3
    assert scene_from_reply(reply, 3, None)["duration"] == 7
    assert scene_from_reply(reply, 3, scene["duration"])["duration"] == scene["duration"]
    for bad, why in [("no json", "no JSON"), ("{oops}", "not JSON"), ('{"a": 1}', "description")]:
        with pytest.raises(ValueError, match=why):
            scene_from_reply(bad, 1, None)


LOOK = ScriptRequest(
    prompt="A short film about a lost umbrella",
    num_scenes=3,
    visual_style="watercolor illustration",
    characters=[{"name": "Mia", "description": "a girl in a yellow raincoat"}],
)


def test_a_scene_names_only_the_scripts_characters():
    script = fallback_script_json(LOOK)
    scene = edited_scene(script["scenes"][0], {"characters": ["Mia"]})
    assert with_scene(script, 1, scene)["scenes"][0]["characters"] == ["Mia"]
    stranger = edited_scene(script["scenes"][0], {"characters": ["Bob"]})
    with pytest.raises(EditError) as raised:
        with_scene(script, 1, stranger)
    assert raised.value.field == "body.characters" and "Bob" in raised.value.problem
    with pytest.raises(EditError) as raised:
        with_scene_inserted(script, 1, stranger)
    assert raised.value.field == "body.scene.characters"


def test_a_model_scene_gets_the_look_every_scene_carries():
    scene = scene_from_reply(
        '{"description": "Mia runs through the rain", "duration": 5, "camera": "close up",'
        ' "action": "she looks back", "narration": "Where did it go?",'
        ' "visual_prompt": "girl running in rain", "characters": []}',
        2,
        None,
    )
    looked = with_look(scene, LOOK, "en")
    assert looked["scene_number"] == 2 and looked["characters"] == ["Mia"]
    assert "watercolor illustration" in looked["visual_prompt"]
    assert "a girl in a yellow raincoat" in looked["visual_prompt"]
    assert with_look(looked, LOOK, "en") == looked
