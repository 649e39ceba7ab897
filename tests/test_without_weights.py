"""With no weights at all the app still starts, says so, and serves fallback scripts."""

import pytest

from serve_app.protocol import TaskResponse

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def app(deploy_app, tmp_path_factory):
    missing = tmp_path_factory.mktemp("empty") / "chatglm3-6b"
    # Long enough that the ingress still knows the model is down for the whole module.
    return deploy_app(model_path=str(missing), model_recheck_s=600)


def test_health_is_degraded_with_the_reason_and_path(app):
    with app.client() as client:
        health = client.get("/health").json()
        status = client.get("/api/model/status").json()
    assert health["status"] == "degraded" and health["llm_loaded"] is False
    assert "does not exist" in health["reason"] and "looked at /" in health["reason"]
    assert status["loaded"] is False and status["model_path"].endswith("chatglm3-6b")


def test_tasks_complete_with_a_chinese_fallback_storyboard(app):
    with app.client() as client:
        response = client.post(
            "/api/tasks/", json={"prompt": "制作一段关于森林探险的短视频"}, params={"wait": "true"}
        )
    assert response.status_code == 200
    task = TaskResponse.model_validate(response.json())
    assert task.status == "completed" and task.source == "fallback"
    assert task.fallback_reason.startswith("model_unavailable")
    script = task.result
    assert script.language == "zh" and 3 <= len(script.scenes) <= 8
    assert len({scene.description for scene in script.scenes}) == len(script.scenes)
    assert len({scene.camera for scene in script.scenes}) > 1
    assert all(scene.visual_prompt.isascii() for scene in script.scenes)


def test_while_the_model_is_known_down_a_task_is_stored_finished(app):
    with app.client() as client:
        first = client.post("/api/tasks/", json={"prompt": "ocean"}, params={"wait": "true"})
        accepted = client.post("/api/tasks/", json={"prompt": "city night walk"})
        stored = client.get(accepted.headers["location"]).json()
    assert first.json()["fallback_reason"].startswith("model_unavailable")
    # The fallback was at hand: the 202 already carries the finished task, as stored.
    assert accepted.status_code == 202 and accepted.json() == stored
    assert stored["status"] == "completed" and stored["source"] == "fallback"
    assert stored["fallback_reason"] == first.json()["fallback_reason"]
    assert stored["attempts"] == 1 and stored["timings"]["queued_ms"] == 0.0
