"""The continuous-batching engine on a real tiny GLM checkpoint, held against the static engine."""

from __future__ import annotations

import asyncio
import json
import shutil
import time

import pytest
from conftest import ask
from pydantic import ValidationError

from deployments.engine import ModelNotAvailable, StaticBatchingEngine, load_model
from deployments.engine.base import RowFailed
from deployments.engine.continuous_batching import ContinuousBatchingEngine
from deployments.engine.modes import resolve_engine
from serve_app.config import Settings

PROMPTS = [
    "制作一段关于森林探险的短视频",
    "A much longer English prompt about a city at night, with neon lights and rain",
    "hi",
]


@pytest.fixture(scope="module")
def static(tiny_model_dir):
    engine = StaticBatchingEngine(str(tiny_model_dir), device="cpu")
    engine.start()
    return engine


@pytest.fixture(scope="module")
def continuous(tiny_model_dir):
    engine = ContinuousBatchingEngine(str(tiny_model_dir), device="cpu")
    engine.start()
    yield engine
    engine.sleep()


@pytest.fixture(scope="module")
def stopping_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny checkpoint with one more stop token: the 4th token greedy decoding writes for
    PROMPTS[0]. The random model never writes its own stop tokens, so this is how a reply gets
    to end on one (at index 3, or earlier if that token came sooner)."""
    loaded = load_model(tiny_model_dir, "fp32", "cpu")
    prompt = loaded.tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPTS[0]}], add_generation_prompt=True, return_tensors="pt"
    )["input_ids"]
    output = loaded.model.generate(prompt, max_new_tokens=4, do_sample=False)
    new_stop = int(output[0, -1])
    path = tmp_path_factory.mktemp("models") / "stopping"
    shutil.copytree(tiny_model_dir, path)
    config = json.loads((path / "generation_config.json").read_text())
    config["eos_token_id"] = [*config["eos_token_id"], new_stop]
    (path / "generation_config.json").write_text(json.dumps(config))
    return path


def test_greedy_replies_equal_the_static_engines(static, continuous):
    # Paged attention over a packed batch vs left-padded SDPA: the same fp32 maths in another
    # order, which on this model leaves every argmax (so every token) unchanged.
    requests = [ask(text, max_new_tokens=n) for text, n in zip(PROMPTS, [24, 7, 40], strict=True)]
    assert continuous.generate(requests) == static.generate(requests)


def test_each_request_keeps_its_own_budget(continuous):
    results = continuous.generate(
        [ask("a", max_new_tokens=3), ask("b", max_new_tokens=9), ask("c", max_new_tokens=1)]
    )
    assert [r.completion_tokens for r in results] == [3, 9, 1]
    assert all(r.finish_reason == "length" for r in results)


def test_a_short_reply_does_not_wait_for_a_long_one(continuous):
    long = continuous.submit(ask("long", max_new_tokens=400, ignore_eos=True))
    short = continuous.submit(ask("short", max_new_tokens=2, ignore_eos=True))
    assert short.result().completion_tokens == 2
    assert not long.done()  # the manager ended the short one at its own budget
    assert long.result().completion_tokens == 400


def test_a_stop_token_ends_the_reply_like_the_static_engine(stopping_model_dir):
    request = ask(PROMPTS[0], max_new_tokens=20)
    static = StaticBatchingEngine(str(stopping_model_dir), device="cpu")
    static.start()
    continuous = ContinuousBatchingEngine(str(stopping_model_dir), device="cpu")
    continuous.start()
    try:
        [result] = continuous.generate([request])
        assert result.finish_reason == "stop" and result.completion_tokens <= 3
        assert [result] == static.generate([request])
        # ignore_eos: the same request runs its whole budget through the stop token.
        [ignoring] = continuous.generate([ask(PROMPTS[0], max_new_tokens=20, ignore_eos=True)])
        assert ignoring.finish_reason == "length" and ignoring.completion_tokens == 20
    finally:
        continuous.sleep()


def test_concurrent_chats_on_one_event_loop_each_get_their_own_reply(continuous):
    requests = [ask(f"{PROMPTS[i % 3]} {i}", max_new_tokens=4 + i) for i in range(16)]

    async def chat_all():
        return await asyncio.gather(*(continuous.chat(r) for r in requests))

    replies = asyncio.run(chat_all())
    assert [r.completion_tokens for r in replies] == [4 + i for i in range(16)]
    assert replies == continuous.generate(requests)
    assert continuous.status()["counters"]["in_flight"] == 0


def test_a_cancelled_chat_cancels_its_request(continuous):
    async def give_up_early():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(continuous.chat(ask("x", max_new_tokens=4000)), timeout=0.3)

    asyncio.run(give_up_early())
    assert continuous.status()["counters"]["in_flight"] == 0
    assert continuous.generate([ask("y", max_new_tokens=2)])[0].completion_tokens == 2


def test_status_has_the_static_engines_shape_plus_the_engine(static, continuous):
    status = continuous.status()
    assert status["engine"] == "continuous" and status["loaded"]
    assert set(static.status()) - {"prefix_cache"} <= set(status)
    assert status["counters"]["requests"] > 0 and status["counters"]["generated_tokens"] > 0


def test_what_the_manager_cannot_run_is_a_clear_value_error(continuous):
    with pytest.raises(ValueError, match="json_schema"):
        continuous.submit(ask("x", json_schema={"type": "object"}))
    with pytest.raises(ValueError, match=r"greedy .* temperature 0\.7"):
        continuous.submit(ask("x", temperature=0.7))
    planned = continuous.kv_cache_tokens
    continuous.kv_cache_tokens = 100
    try:
        with pytest.raises(ValueError, match="KV cache"):
            continuous.submit(ask("x", max_new_tokens=200))
    finally:
        continuous.kv_cache_tokens = planned
    assert continuous.status()["counters"]["in_flight"] == 0


def test_a_refused_request_fails_only_its_own_row(continuous):
    refused, fine = continuous.generate(
        [ask("x", json_schema={"type": "object"}), ask("y", max_new_tokens=3, ignore_eos=True)]
    )
    assert isinstance(refused, RowFailed) and "json_schema" in str(refused)
    assert fine.completion_tokens == 3


def test_a_sampling_engine_takes_per_request_temperature_and_top_p(tiny_model_dir):
    engine = ContinuousBatchingEngine(str(tiny_model_dir), device="cpu", temperature=0.7, top_p=0.9)
    engine.start()
    try:
        results = engine.generate(
            [ask("a", temperature=0.7, max_new_tokens=5), ask("b", temperature=1.3, top_p=0.5)]
        )
        assert results[0].completion_tokens == 5 and 1 <= results[1].completion_tokens <= 512
        with pytest.raises(ValueError, match=r"sampling .* temperature 0"):
            engine.submit(ask("c"))
    finally:
        engine.sleep()


def test_sleep_frees_the_model_and_wakeup_reloads_it(tiny_model_dir):
    engine = ContinuousBatchingEngine(str(tiny_model_dir), device="cpu")
    engine.start()
    before = engine.generate([ask(PROMPTS[0], max_new_tokens=6)])
    engine.sleep()
    assert not engine.loaded and engine.status()["reason"] == "unloaded"
    with pytest.raises(ModelNotAvailable):
        engine.generate([ask(PROMPTS[0])])
    engine.wakeup()
    assert engine.generate([ask(PROMPTS[0], max_new_tokens=6)]) == before
    engine.sleep()


def test_a_manager_that_cannot_start_leaves_the_engine_unavailable_with_the_reason(
    tiny_model_dir,
):
    # The deployment keeps a replica up (fallback only) on ModelNotAvailable, not on others.
    engine = ContinuousBatchingEngine(str(tiny_model_dir), device="cpu", max_batch_size=0)
    with pytest.raises(ModelNotAvailable, match="continuous batching did not start"):
        engine.start()
    assert not engine.loaded
    assert "max_requests_per_batch" in engine.status()["reason"]


def test_check_health_fails_while_a_request_is_pending_too_long(tiny_model_dir):
    engine = ContinuousBatchingEngine(str(tiny_model_dir), device="cpu", wedged_after_s=0.0)
    engine.start()
    try:
        engine.check_health()  # idle is healthy
        future = engine.submit(ask("x", max_new_tokens=4000, ignore_eos=True))
        time.sleep(0.01)
        with pytest.raises(RuntimeError, match="wedged"):
            engine.check_health()
        assert future.cancel()
        engine.check_health()  # the cancelled request is no longer pending
    finally:
        engine.sleep()


def test_check_health_fails_when_the_manager_loop_has_stopped(tiny_model_dir):
    engine = ContinuousBatchingEngine(str(tiny_model_dir), device="cpu")
    engine.start()
    engine._manager.stop(block=True)  # what a crashed loop looks like from outside
    with pytest.raises(RuntimeError, match="loop has stopped"):
        engine.check_health()
    with pytest.raises(ModelNotAvailable, match="not running"):
        engine.generate([ask("x", max_new_tokens=2)])
    engine.sleep()


def test_settings_refuse_continuous_batching_with_constrained_decoding():
    with pytest.raises(ValidationError, match=r"engine 'continuous'.*constrained_decoding"):
        Settings(engine="continuous")
    assert Settings(engine="continuous", constrained_decoding=False).engine == "continuous"


def test_environment_picks_the_engine(monkeypatch):
    monkeypatch.setenv("VSS_ENGINE", "continuous")
    monkeypatch.setenv("VSS_CONSTRAINED_DECODING", "false")
    assert Settings(engine="static").engine == "continuous"


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_auto_picks_the_engine_measured_faster_and_respects_an_explicit_choice(device):
    # CPU: static measured faster; CUDA: not measured yet, so static too.
    assert resolve_engine("auto", device, constrained_decoding=False) == "static"
    assert resolve_engine("auto", device, constrained_decoding=True) == "static"
    assert resolve_engine("continuous", device, constrained_decoding=False) == "continuous"
