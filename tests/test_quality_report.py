"""The quality report every task shows (issue 13, item 3): computed from the request and the
script on read, so an over-long model line is reported, not cut, and an edit is re-scored."""

from __future__ import annotations

import json

import pytest

from deployments.storyboard.fallback import build_fallback_script
from deployments.storyboard.models import ScriptRequest, VideoScript
from deployments.storyboard.parser import parse_script
from deployments.storyboard.quality import QualityReport, quality_report
from serve_app.protocol import TaskResponse
from serve_app.task_responses import to_task_response
from serve_app.task_store import TaskStore

MIA = {"name": "Mia", "description": "a girl in a yellow raincoat"}
LEO = {"name": "Leo", "description": "an old man with a grey beard"}
LONG_LINE = (
    "This narration goes on and on, far longer than anyone could say in two seconds of film."
)


def reply(narrations: list[str], language: str = "en") -> str:
    scenes = [
        {
            "description": f"shot {i}",
            "duration": 2,
            "camera": "wide shot",
            "action": "walks",
            "narration": line,
            "visual_prompt": "rainy street",
        }
        for i, line in enumerate(narrations)
    ]
    return json.dumps({"title": "Rain", "language": language, "scenes": scenes})


def test_a_fallback_script_meets_its_request():
    request = ScriptRequest(prompt="A short film about a lost umbrella", characters=[MIA, LEO])
    report = quality_report(request, build_fallback_script(request))
    assert report.duration_ok and report.scene_count_ok and report.narration_ok
    assert report.language_ok and report.visual_prompts_english
    assert report.distinct_scene_ratio == 1.0 and report.character_coverage == 1.0
    assert [c.name for c in report.characters] == ["Mia", "Leo"]
    assert all(c.scenes for c in report.characters)
    assert report.requested_duration_s == report.total_duration_s == 30


def test_an_over_long_model_line_is_kept_and_reported():
    request = ScriptRequest(prompt="rain", num_scenes=2, duration_s=5)
    script = parse_script(reply(["Rain falls.", LONG_LINE]), request)
    assert script.scenes[1].narration == LONG_LINE  # not cut
    report = quality_report(request, script)
    assert not report.narration_ok
    assert [(f.fits, f.budget, f.unit) for f in report.narration] == [
        (True, 7, "words"),
        (False, 7, "words"),
    ]
    assert report.narration[1].length == 17


def test_a_chinese_line_is_counted_in_characters():
    request = ScriptRequest(prompt="海边日落", num_scenes=2, duration_s=5)
    script = parse_script(
        reply(["海浪。", "夕阳慢慢沉入大海，天空被染成一片金红色。"], "zh"), request
    )
    report = quality_report(request, script)
    assert [(f.length, f.budget, f.fits) for f in report.narration] == [
        (2, 12, True),
        (18, 12, False),
    ]


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        ({"duration_s": 40}, "duration_ok"),
        ({"num_scenes": 3, "duration_s": 30}, "scene_count_ok"),
        ({"language": "zh"}, "language_ok"),
    ],
)
def test_a_script_that_misses_its_request_is_reported(change: dict, failing: str):
    script = build_fallback_script(ScriptRequest(prompt="a forest walk", num_scenes=4))
    report = quality_report(ScriptRequest(prompt="a forest walk", **change), script)
    assert getattr(report, failing) is False
    assert getattr(
        quality_report(ScriptRequest(prompt="a forest walk", num_scenes=4), script), failing
    )


def test_repeated_scenes_and_missing_characters_are_counted():
    request = ScriptRequest(prompt="rain", num_scenes=2, duration_s=10, characters=[MIA, LEO])
    script = build_fallback_script(request).model_dump(mode="json")
    script["scenes"][1]["description"] = script["scenes"][0]["description"]
    for scene in script["scenes"]:
        scene["characters"] = ["Mia"]
    report = quality_report(request, VideoScript.model_validate(script))
    assert report.distinct_scene_ratio == 0.5
    assert report.character_coverage == 0.5
    assert [(c.name, c.scenes) for c in report.characters] == [("Mia", [1, 2]), ("Leo", [])]


def test_every_task_response_carries_it(tmp_path):
    store = TaskStore(tmp_path / "tasks.db")
    request = ScriptRequest(prompt="森林探险", characters=[MIA])
    body = request.model_dump(mode="json")
    running = store.create_running("a" * 32, body, "w", 30)
    assert to_task_response(running).quality is None  # no script yet
    script = build_fallback_script(request).model_dump(mode="json")
    done = store.complete(running["task_id"], "w", {"script": script, "source": "fallback"})
    shown = to_task_response(done)
    assert shown.quality == quality_report(request, build_fallback_script(request))
    assert shown.quality.character_coverage == 1.0


def test_the_docs_show_an_example():
    schema = TaskResponse.model_json_schema()
    example = schema["$defs"]["QualityReport"]["example"]
    assert QualityReport.model_validate(example).narration_ok
