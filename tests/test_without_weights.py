"""With no weights at all the app still starts, says so, and serves fallback scripts."""

import pytest

from serve_app.protocol import TaskResponse

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def app(deploy_app, tmp_path_factory):
    missing = tmp_path_factory.mktemp("empty") / "chatglm3-6b"
    return deploy_app(model_path=str(missing))


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
