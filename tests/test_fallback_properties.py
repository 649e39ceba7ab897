"""Property: the fallback writes a valid, distinct, language-correct script for any request."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployments.storyboard.constants import (
    MAX_DURATION_S,
    MAX_SCENE_SECONDS,
    MAX_SCENES,
    MIN_DURATION_S,
    MIN_SCENE_SECONDS,
    MIN_SCENES,
)
from deployments.storyboard.fallback import build_fallback_script
from deployments.storyboard.language import cjk_count, has_visible_text, resolve_language
from deployments.storyboard.lengths import planned_duration
from deployments.storyboard.models import ScriptRequest, VideoScript


@st.composite
def lengths(draw) -> dict[str, int | None]:
    """duration_s and num_scenes a request may ask for: each, both (when they fit) or neither."""
    num_scenes = draw(st.none() | st.integers(MIN_SCENES, MAX_SCENES))
    low, high = MIN_DURATION_S, MAX_DURATION_S
    if num_scenes is not None:
        low = max(low, num_scenes * MIN_SCENE_SECONDS)
        high = min(high, num_scenes * MAX_SCENE_SECONDS)
    return {"num_scenes": num_scenes, "duration_s": draw(st.none() | st.integers(low, high))}


visible_text = st.text(min_size=1, max_size=300).filter(has_visible_text)
requests = st.builds(
    lambda length, **fields: ScriptRequest(**fields, **length),
    lengths(),
    prompt=visible_text,
    language=st.sampled_from(["auto", "zh", "en"]),
    style=st.none() | st.text(min_size=1, max_size=50).filter(has_visible_text),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests)
def test_fallback_for_any_request(request: ScriptRequest):
    script = build_fallback_script(request)
    assert VideoScript.model_validate(script.model_dump()) == script
    count = len(script.scenes)
    assert count == request.num_scenes if request.num_scenes else 3 <= count <= 8
    assert script.total_duration == planned_duration(request.duration_s, request.num_scenes)
    assert all(MIN_SCENE_SECONDS <= s.duration <= MAX_SCENE_SECONDS for s in script.scenes)
    assert len({scene.description for scene in script.scenes}) == count
    assert script.language == resolve_language(request)
    assert all(not cjk_count(scene.visual_prompt) for scene in script.scenes)
    if script.language == "en":
        assert all(not cjk_count(s.narration + s.description + s.action) for s in script.scenes)
