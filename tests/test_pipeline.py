"""The script pipeline on the real engine and ScriptProcessor class, in-process.

They run as plain objects behind handle-shaped adapters, so this tests the pipeline's own logic
(cache, source and reasons) on real generation without starting Ray; the Serve graph itself is
covered by the integration tests.
"""

import asyncio
import collections
import contextlib

import pytest

from deployments.engine import ModelNotAvailable, StaticBatchingEngine
from deployments.script_processor import ScriptProcessor
from serve_app.config import Settings
from serve_app.pipeline import ScriptPipeline
from serve_app.protocol import ScriptRequest, VideoScript


class LocalHandle:
    """`handle.method.remote(...)` on an in-process object, like a Serve DeploymentHandle."""

    def __init__(self, target):
        self._target = target
        self.calls: collections.Counter = collections.Counter()

    def __getattr__(self, name):
        method = getattr(self._target, name)
        calls = self.calls

        class Method:
            @staticmethod
            async def remote(*args):
                calls[name] += 1
                result = method(*args)
                return await result if asyncio.iscoroutine(result) else result

        return Method


class LocalChat:
    """The ChatGLM deployment's `chat` without @serve.batch (which needs a replica)."""

    def __init__(self, model_path: str):
        self.calls = 0
        self.engine = StaticBatchingEngine(model_path)
        with contextlib.suppress(ModelNotAvailable):  # then every chat raises it, as in Serve
            self.engine.start()

    def chat(self, request):
        self.calls += 1
        return self.engine.generate([request])[0]


async def build_pipeline(settings: Settings) -> ScriptPipeline:
    processor = ScriptProcessor.func_or_class(settings)
    chat = LocalChat(settings.model_path)
    return ScriptPipeline(LocalHandle(chat), LocalHandle(processor), settings)


REQUEST = ScriptRequest(prompt="制作一段关于森林探险的短视频", num_scenes=3)


def test_greedy_llm_scripts_are_cached_and_served_again(tiny_model_dir):
    settings = Settings(model_path=str(tiny_model_dir), temperature=0.0, max_new_tokens=1024)

    async def twice():
        pipeline = await build_pipeline(settings)
        first = await pipeline.write_script(REQUEST)
        second = await pipeline.write_script(REQUEST)
        return pipeline, first, second

    pipeline, first, second = asyncio.run(twice())
    # Constrained decoding makes even a random model's reply a valid script.
    assert first["source"] == "llm", first["fallback_reason"]
    VideoScript.model_validate(first["script"])
    assert second["script"] == first["script"] and second["generation_ms"] == 0.0
    assert pipeline.cache_stats()["hits"] == 1 and pipeline.cache_stats()["misses"] == 1


def test_sampling_turns_the_cache_off(tiny_model_dir):
    settings = Settings(model_path=str(tiny_model_dir), temperature=0.7)
    pipeline = asyncio.run(build_pipeline(settings))
    assert pipeline.cache_stats() is None


@pytest.mark.parametrize("constrained", [True, False])
def test_a_missing_model_falls_back_with_the_reason(tmp_path, constrained):
    settings = Settings(model_path=str(tmp_path / "none"), constrained_decoding=constrained)

    async def write():
        return await (await build_pipeline(settings)).write_script(REQUEST)

    outcome = asyncio.run(write())
    assert outcome["source"] == "fallback"
    assert outcome["fallback_reason"].startswith("model_unavailable: model directory does not")
    assert len(VideoScript.model_validate(outcome["script"]).scenes) == 3


@pytest.mark.parametrize(("recheck_s", "chat_calls"), [(60.0, 1), (0.0, 3)])
def test_a_model_known_to_be_down_is_not_asked_again_until_the_recheck(
    tmp_path, recheck_s, chat_calls
):
    settings = Settings(model_path=str(tmp_path / "none"), model_recheck_s=recheck_s)

    async def write_three():
        pipeline = await build_pipeline(settings)
        outcomes = [await pipeline.write_script(REQUEST) for _ in range(3)]
        return pipeline, outcomes

    pipeline, outcomes = asyncio.run(write_three())
    assert pipeline.chat._target.calls == chat_calls
    assert {o["source"] for o in outcomes} == {"fallback"}
    assert len({o["fallback_reason"] for o in outcomes}) == 1
    assert outcomes[0]["fallback_reason"].startswith("model_unavailable")


def test_without_self_repair_a_bad_reply_falls_back_without_a_repair_turn(tiny_model_dir):
    # Unconstrained, a random model's reply is not JSON: the one attempt fails to parse.
    settings = Settings(
        model_path=str(tiny_model_dir),
        constrained_decoding=False,
        self_repair=False,
        max_new_tokens=16,
    )

    async def write():
        pipeline = await build_pipeline(settings)
        return pipeline, await pipeline.write_script(REQUEST)

    pipeline, outcome = asyncio.run(write())
    assert outcome["source"] == "fallback" and outcome["fallback_reason"].startswith("parse_failed")
    assert outcome["parse_failures"] == 1
    assert pipeline.processor.calls["prepare_repair"] == 0


class HungProcessor:
    """A script processor whose prepare never answers in time (a wedged replica)."""

    def __init__(self, settings):
        self.real = ScriptProcessor.func_or_class(settings)

    async def prepare(self, request):
        await asyncio.sleep(3600)

    def fallback(self, request):
        return self.real.fallback(request)


def test_the_deadline_covers_a_hung_processor_too(tiny_model_dir):
    settings = Settings(model_path=str(tiny_model_dir), generation_timeout_s=0.3)

    async def write():
        chat = LocalChat(settings.model_path)
        pipeline = ScriptPipeline(LocalHandle(chat), LocalHandle(HungProcessor(settings)), settings)
        return await pipeline.write_script(REQUEST), chat.calls

    outcome, chat_calls = asyncio.run(write())
    assert outcome["source"] == "fallback" and outcome["fallback_reason"].startswith("timeout")
    assert chat_calls == 0
    VideoScript.model_validate(outcome["script"])
