import pytest
from pydantic import ValidationError

from deployments.storyboard.models import ScriptRequest, VideoScript


def scene(number, duration=5.0, camera="wide shot"):
    return {
        "scene_number": number,
        "description": "d",
        "duration": duration,
        "camera": camera,
        "action": "a",
        "narration": "n",
        "visual_prompt": "v",
    }


def test_the_documented_example_is_a_valid_script():
    example = VideoScript.model_config["json_schema_extra"]["example"]
    assert VideoScript.model_validate(example).total_duration == 12.0


def test_scene_numbers_must_run_from_one():
    with pytest.raises(ValidationError, match="scene_number must run"):
        VideoScript(title="t", language="zh", total_duration=10, scenes=[scene(1), scene(3)])


def test_total_duration_must_equal_the_sum():
    with pytest.raises(ValidationError, match="total_duration"):
        VideoScript(title="t", language="en", total_duration=11, scenes=[scene(1), scene(2)])


def test_camera_comes_from_the_vocabulary():
    with pytest.raises(ValidationError, match="camera"):
        VideoScript(title="t", language="en", total_duration=5, scenes=[scene(1, camera="dutch")])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x" * 2001}, "prompt"),
        ({"prompt": "ok", "language": "it"}, "language"),
        ({"prompt": "ok", "duration_s": 4}, "duration_s"),
        ({"prompt": "ok", "num_scenes": 21}, "num_scenes"),
        ({"prompt": "ok", "surprise": 1}, "surprise"),
        ({"prompt": 42}, "prompt"),
    ],
)
def test_bad_requests_name_the_field(body, field):
    with pytest.raises(ValidationError, match=field):
        ScriptRequest.model_validate(body)


def test_prompt_is_stripped():
    assert ScriptRequest(prompt="  森林  ").prompt == "森林"
