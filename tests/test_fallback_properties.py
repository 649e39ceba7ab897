"""Property: the fallback writes a valid, distinct, language-correct script for any request."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployments.storyboard.fallback import build_fallback_script
from deployments.storyboard.fallback.builder import MAX_SCENE_SECONDS
from deployments.storyboard.language import cjk_count, resolve_language
from deployments.storyboard.models import ScriptRequest, VideoScript

requests = st.builds(
    ScriptRequest,
    prompt=st.text(min_size=1, max_size=300).filter(str.strip),
    language=st.sampled_from(["auto", "zh", "en"]),
    style=st.none() | st.text(min_size=1, max_size=50),
    duration_s=st.none() | st.integers(5, 300),
    num_scenes=st.none() | st.integers(1, 20),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests)
def test_fallback_for_any_request(request: ScriptRequest):
    script = build_fallback_script(request)
    assert VideoScript.model_validate(script.model_dump()) == script
    count = len(script.scenes)
    assert count == request.num_scenes if request.num_scenes else 3 <= count <= 8
    wanted = request.duration_s or 30
    assert script.total_duration == min(wanted, MAX_SCENE_SECONDS * count)
    assert len({scene.description for scene in script.scenes}) == count
    assert script.language == resolve_language(request)
    assert all(not cjk_count(scene.visual_prompt) for scene in script.scenes)
    if script.language == "en":
        assert all(not cjk_count(s.narration + s.description + s.action) for s in script.scenes)
