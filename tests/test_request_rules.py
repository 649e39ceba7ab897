"""Requests that cannot be met are refused, and both paths answer the others with one total.

A storyboard's scenes each last MIN_SCENE_SECONDS..MAX_SCENE_SECONDS: a duration its scene count
cannot carry is a 422 naming both fields; a field left open is chosen to fit; the parser and the
fallback share the total with one function (storyboard.lengths).
"""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from deployments.storyboard.constants import (
    DEFAULT_DURATION_S,
    MAX_DURATION_S,
    MAX_SCENE_SECONDS,
    MAX_SCENES,
    MIN_DURATION_S,
    MIN_SCENE_SECONDS,
    MIN_SCENES,
)
from deployments.storyboard.fallback import build_fallback_script
from deployments.storyboard.fallback.builder import ROLE_WEIGHTS, choose_genre, plan_arc
from deployments.storyboard.lengths import (
    planned_duration,
    planned_scene_count,
    scene_count_range,
    scene_length_problem,
    share_duration,
)
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.parser import ScriptParseError, parse_script
from deployments.storyboard.prompts import build_messages, script_json_schema
from serve_app.errors import install_error_handlers

DURATIONS = range(MIN_DURATION_S, MAX_DURATION_S + 1)
COUNTS = range(MIN_SCENES, MAX_SCENES + 1)
FEASIBLE = [(d, n) for d in DURATIONS for n in COUNTS if scene_length_problem(d, n) is None]
IMPOSSIBLE = [(d, n) for d in DURATIONS for n in COUNTS if scene_length_problem(d, n) is not None]


@pytest.fixture(scope="module")
def client() -> TestClient:
    """The storyboard request model behind the service's own error handlers."""
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/scripts")
    async def accept(request: ScriptRequest) -> dict:
        return request.model_dump()

    return TestClient(app)


def fields_of(response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    return {problem["field"]: problem["problem"] for problem in error["fields"]}


@pytest.mark.parametrize(
    ("duration_s", "num_scenes", "advice"),
    [(300, 1, "at least 5 scenes"), (5, 20, "at most 5 scenes"), (61, 1, "at least 2 scenes")],
)
def test_a_duration_its_scenes_cannot_carry_is_a_422_naming_both_fields(
    client, duration_s, num_scenes, advice
):
    body = {"prompt": "城市夜景", "duration_s": duration_s, "num_scenes": num_scenes}
    fields = fields_of(client.post("/scripts", json=body))
    assert set(fields) == {"body.duration_s", "body.num_scenes"}
    assert all(advice in problem for problem in fields.values())
    assert f"{MIN_SCENE_SECONDS}–{MAX_SCENE_SECONDS} s" in fields["body.duration_s"]


def test_every_pair_is_either_refused_or_met():
    assert len(FEASIBLE) + len(IMPOSSIBLE) == len(DURATIONS) * len(COUNTS)
    for duration_s, num_scenes in IMPOSSIBLE:
        assert not MIN_SCENE_SECONDS <= duration_s / num_scenes <= MAX_SCENE_SECONDS
        with pytest.raises(ValidationError):
            ScriptRequest(prompt="x", duration_s=duration_s, num_scenes=num_scenes)
    for duration_s, num_scenes in FEASIBLE:
        ScriptRequest(prompt="x", duration_s=duration_s, num_scenes=num_scenes)


def test_a_field_left_open_is_chosen_to_fit_the_other():
    for duration_s in DURATIONS:
        count = planned_scene_count(duration_s, None)
        assert scene_length_problem(duration_s, count) is None, duration_s
    for num_scenes in COUNTS:
        total = planned_duration(None, num_scenes)
        assert MIN_DURATION_S <= total <= MAX_DURATION_S
        assert scene_length_problem(total, num_scenes) is None, num_scenes
    assert planned_duration(None, None) == DEFAULT_DURATION_S


def test_every_feasible_pair_is_shared_exactly_within_the_scene_range():
    """The whole valid range, with the fallback's arc weights: exact totals, every scene valid."""
    genre = choose_genre("城市夜景")
    for duration_s, num_scenes in FEASIBLE:
        weights = [ROLE_WEIGHTS[shot.role] for shot in plan_arc(genre, num_scenes)]
        durations = share_duration(duration_s, weights)
        assert sum(durations) == duration_s, (duration_s, num_scenes)
        assert all(MIN_SCENE_SECONDS <= d <= MAX_SCENE_SECONDS for d in durations)


def test_sharing_refuses_a_total_the_scenes_cannot_carry():
    with pytest.raises(ValueError, match="too long"):
        share_duration(300, [1.0])
    with pytest.raises(ValueError, match="too short"):
        share_duration(5, [1.0] * 20)


@st.composite
def request_and_reply(draw) -> tuple[ScriptRequest, str]:
    """A request in the valid range, and a model reply with a scene count that can carry its
    total and any durations (missing, out of range, text)."""
    num_scenes = draw(st.none() | st.integers(MIN_SCENES, MAX_SCENES))
    low = max(MIN_DURATION_S, (num_scenes or 1) * MIN_SCENE_SECONDS)
    high = min(MAX_DURATION_S, (num_scenes or MAX_SCENES) * MAX_SCENE_SECONDS)
    duration_s = draw(st.none() | st.integers(low, high))
    request = ScriptRequest(prompt="城市夜景", duration_s=duration_s, num_scenes=num_scenes)
    total = planned_duration(duration_s, num_scenes)
    fitting = [n for n in COUNTS if scene_length_problem(total, n) is None]
    count = num_scenes or draw(st.sampled_from(fitting))
    lengths = st.none() | st.floats(-10, 500, allow_nan=False) | st.sampled_from(["5秒", "1分"])
    scenes = [{"description": f"scene {i}", "duration": draw(lengths)} for i in range(1, count + 1)]
    return request, json.dumps({"scenes": scenes}, ensure_ascii=False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request_and_reply())
def test_the_model_path_and_the_fallback_answer_with_the_same_total(case):
    request, reply = case
    parsed = parse_script(reply, request)
    fallback = build_fallback_script(request)
    total = planned_duration(request.duration_s, request.num_scenes)
    assert parsed.total_duration == fallback.total_duration == total
    for script in (parsed, fallback):
        assert sum(scene.duration for scene in script.scenes) == total
        assert all(MIN_SCENE_SECONDS <= s.duration <= MAX_SCENE_SECONDS for s in script.scenes)


def test_a_reply_too_short_for_the_total_goes_back_to_the_model_with_the_count_to_write():
    reply = json.dumps({"scenes": [{"description": "a", "duration": 60}] * 2})
    with pytest.raises(ScriptParseError, match="2 scenes cannot add up to the total length"):
        parse_script(reply, ScriptRequest(prompt="x", duration_s=300))


def test_the_prompt_and_schema_ask_for_the_scene_counts_that_carry_the_total():
    request = ScriptRequest(prompt="城市夜景", duration_s=300)
    low, high = scene_count_range(300)
    assert (low, high) == (5, 8)
    user = build_messages(request)[1]["content"]
    assert "总时长：300 秒" in user and f"场景数：{low} 到 {high} 个" in user
    scenes = script_json_schema(request)["properties"]["scenes"]
    assert (scenes["minItems"], scenes["maxItems"]) == (low, high)
    english = build_messages(ScriptRequest(prompt="city at night", num_scenes=20))[1]["content"]
    assert f"Total length: {DEFAULT_DURATION_S} seconds" in english


# ---- text with nothing to see -------------------------------------------------------------------

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
INVISIBLE = [ZERO_WIDTH, BIDI, "\u200b \u202e\n\t", " \x00\x1f\x7f", "\u3164\u2800", "\u0301"]


@pytest.mark.parametrize("text", INVISIBLE)
@pytest.mark.parametrize("field", ["prompt", "style", "system_prompt"])
def test_text_with_nothing_visible_is_a_422_naming_its_field(client, field, text):
    body = {"prompt": "城市夜景", field: text}
    fields = fields_of(client.post("/scripts", json=body))
    assert fields == {f"body.{field}": fields[f"body.{field}"]}
    assert "has no visible text" in fields[f"body.{field}"]


def test_visible_text_keeps_its_zero_width_characters_and_loses_its_bidi_controls(client):
    body = {
        "prompt": "\u202e城市\u200b夜景\u202c 👩\u200d💻 मेरा\u200c",
        "style": "\u2066vlog\u2069",
        "system_prompt": "\ufeffYou write storyboards.",
    }
    response = client.post("/scripts", json=body)
    assert response.status_code == 200, response.text
    accepted = response.json()
    assert accepted["prompt"] == "城市\u200b夜景 👩\u200d💻 मेरा\u200c"
    assert accepted["style"] == "vlog"
    assert accepted["system_prompt"] == "\ufeffYou write storyboards."
