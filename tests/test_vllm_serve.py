"""The service with `engine: vllm` (vLLM's CPU build, `make test-vllm`): tasks through the real
HTTP API are written by the model through vLLM, and concurrent ones run together in vLLM's
scheduler (no @serve.batch in front of it)."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

if os.environ.get("VSS_TEST_VLLM") != "1":
    pytest.skip("vLLM serve tests run with `make test-vllm`", allow_module_level=True)

import vllm  # noqa: F401  (VSS_TEST_VLLM=1 without vLLM: fail here, loudly)

from deployments.storyboard.models import VideoScript
from scripts.make_tiny_model import make_tiny_model

pytestmark = pytest.mark.integration

CONCURRENT = 6


@pytest.fixture(scope="module")
def app(deploy_app, tmp_path_factory):
    model = make_tiny_model(tmp_path_factory.mktemp("models") / "tiny64", preset="tiny64")
    return deploy_app(
        model_path=str(model),
        engine="vllm",
        vllm_max_num_seqs=8,
        max_new_tokens=1024,
        max_prompt_tokens=512,
    )


def test_concurrent_tasks_are_written_by_vllm_together(app):
    async def send_all():
        async with httpx.AsyncClient(base_url=app.url, timeout=600) as session:
            bodies = [{"prompt": f"A cat video {i}", "num_scenes": 2} for i in range(CONCURRENT)]
            return await asyncio.gather(
                *(session.post("/api/tasks/", json=b, params={"wait": "true"}) for b in bodies)
            )

    responses = asyncio.run(send_all())
    assert [r.status_code for r in responses] == [200] * CONCURRENT, responses[0].text
    tasks = [r.json() for r in responses]
    assert all(t["status"] == "completed" and t["source"] == "llm" for t in tasks), [
        (t["source"], t.get("fallback_reason")) for t in tasks
    ]
    for task in tasks:
        assert len(VideoScript.model_validate(task["result"]).scenes) == 2
    with app.client() as client:
        status = client.get("/api/model/status").json()
    assert status.get("engine") == "vllm" and status["loaded"], status
    assert status["counters"]["requests"] >= CONCURRENT
    assert status["counters"]["batches"] == 0  # no @serve.batch: vLLM scheduled them
    # vLLM's own scheduler had several of them running at once
    assert status["scheduler"]["max_running_requests_seen"] > 1, status["scheduler"]
    assert status["scheduler"]["unfinished_requests"] == 0
