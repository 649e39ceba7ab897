"""/health's per-replica cache of the model's status and what callers without a key see."""

from __future__ import annotations

import asyncio

from serve_app.protocol import HealthResponse
from serve_app.routes.health import NOT_LOADED, ModelHealth, without_detail


class CountingChat:
    """The ChatGLM handle's `status.remote()`: counts the calls the cache lets through."""

    def __init__(self):
        self.calls = 0
        outer = self

        class Status:
            @staticmethod
            def remote():
                outer.calls += 1

                async def answer():
                    await asyncio.sleep(0.01)
                    return {"loaded": True, "call": outer.calls}

                return asyncio.ensure_future(answer())

        self.status = Status


def test_probes_within_the_window_share_one_status_call():
    now = [100.0]

    async def probes():
        chat = CountingChat()
        health = ModelHealth(chat, ttl_s=1.0, clock=lambda: now[0])
        together = await asyncio.gather(*(health.status() for _ in range(10)))
        now[0] += 0.5
        within = await health.status()
        now[0] += 0.6
        after = await health.status()
        health.forget()
        forgotten = await health.status()
        return chat.calls, together, within, after, forgotten

    calls, together, within, after, forgotten = asyncio.run(probes())
    assert calls == 3
    assert {answer["call"] for answer in together} == {1} and within["call"] == 1
    assert after["call"] == 2 and forgotten["call"] == 3


def test_a_caller_without_a_key_sees_no_path_and_no_load_error():
    detailed = HealthResponse(
        status="degraded",
        llm_loaded=False,
        device=None,
        model_path="/srv/models/chatglm3-6b",
        reason="no weights: /srv/models/chatglm3-6b does not exist (looked at /srv/models/)",
    )
    shown = without_detail(detailed)
    assert shown.model_path == "chatglm3-6b" and shown.reason == NOT_LOADED
    assert "/" not in shown.model_dump_json().replace("GET /api/model/status", "")
    healthy = detailed.model_copy(update={"status": "ok", "llm_loaded": True, "reason": None})
    assert without_detail(healthy).reason is None
