"""Property: whatever text a model writes, parse_script returns a valid VideoScript or raises
ScriptParseError, nothing else."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployments.storyboard.constants import MAX_SCENE_SECONDS, MIN_SCENE_SECONDS
from deployments.storyboard.models import ScriptRequest, VideoScript
from deployments.storyboard.parser import SCENE_FIELD_KEYS, ScriptParseError, parse_script

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
)  # fmt: skip
field_names = st.sampled_from(
    [name for names in SCENE_FIELD_KEYS.values() for name in names]
    + ["scenes", "shots", "镜头", "title", "标题", "language", "scene_number", "total_duration"]
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.one_of(field_names, st.text(max_size=10)), children, max_size=6),
    ),
    max_leaves=30,
)


def assert_script_or_parse_error(text: str, request: ScriptRequest | None = None) -> None:
    try:
        script = parse_script(text, request)
    except ScriptParseError as error:
        assert error.reason
        return
    assert isinstance(script, VideoScript)
    assert VideoScript.model_validate(script.model_dump()) == script
    assert all(MIN_SCENE_SECONDS <= s.duration <= MAX_SCENE_SECONDS for s in script.scenes)


@PROPERTY_SETTINGS
@given(st.text(max_size=400))
def test_any_unicode_text(text: str):
    assert_script_or_parse_error(text)


@PROPERTY_SETTINGS
@given(json_values, st.integers(0, 400), st.sampled_from(["", "```json\n", "好的：\n"]))
def test_json_shaped_text_cut_anywhere(value, cut: int, prefix: str):
    text = prefix + json.dumps(value, ensure_ascii=False, allow_nan=True)
    assert_script_or_parse_error(text[: max(1, len(text) - cut)])


@PROPERTY_SETTINGS
@given(
    st.lists(st.dictionaries(field_names, scalars, max_size=7), min_size=1, max_size=25),
    st.integers(5, 300),
)
def test_scene_lists_with_arbitrary_fields(scenes, duration_s: int):
    text = json.dumps({"scenes": scenes}, ensure_ascii=False, allow_nan=True)
    request = ScriptRequest(prompt="森林探险", duration_s=duration_s)
    assert_script_or_parse_error(text, request)
    try:
        script = parse_script(text, request)
    except ScriptParseError:
        return
    assert script.total_duration == duration_s
