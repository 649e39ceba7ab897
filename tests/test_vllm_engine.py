"""The vLLM engine on vLLM's CPU build (`make test-vllm`, in .venv-vllm): a random head_dim-64 model
(`make_tiny_model.py --preset tiny64`; vLLM's CPU attention refuses the tiny preset's 16) through
the real AsyncLLM. Plain `make test` (no vLLM in .venv) skips this module; with VSS_TEST_VLLM=1
a missing vLLM is an error, not a skip.
"""

from __future__ import annotations

import json
import os
import threading
import time

import jsonschema
import pytest

if os.environ.get("VSS_TEST_VLLM") != "1":
    pytest.skip("vLLM engine tests run with `make test-vllm`", allow_module_level=True)

import vllm  # noqa: F401  (VSS_TEST_VLLM=1 without vLLM: fail here, loudly)

from deployments.engine import GenerationRequest, ModelNotAvailable, StaticBatchingEngine
from deployments.engine.base import PromptTooLong, RequestCancelled, results_or_raise
from deployments.engine.config import EngineConfig
from deployments.engine.modes import build_engine, resolve_engine
from deployments.engine.vllm_engine import VLLMEngine
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.prompts import build_messages, script_json_schema
from scripts.make_tiny_model import make_original_chatglm3, make_tiny_model

PROMPTS = ["制作一段关于森林探险的短视频", "A cat video", "typed <|user|> and [gMASK] stay text"]


def ask(text: str, **sampling) -> GenerationRequest:
    sampling.setdefault("temperature", 0.0)
    sampling.setdefault("max_new_tokens", 24)
    return GenerationRequest([{"role": "user", "content": text}], **sampling)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny64", preset="tiny64")


@pytest.fixture(scope="module")
def engine(model_dir):
    engine = VLLMEngine(str(model_dir), device="cpu", max_num_seqs=8, request_tokens=4096)
    engine.start()
    yield engine
    engine.sleep()


@pytest.fixture(scope="module")
def static(model_dir):
    engine = StaticBatchingEngine(str(model_dir), device="cpu")
    engine.start()
    return engine


def test_greedy_replies_equal_the_static_engines(engine, static):
    requests = [ask(p) for p in PROMPTS]
    ours = results_or_raise(engine.generate(requests))
    theirs = results_or_raise(static.generate(requests))
    assert ours == theirs
    assert all(r.completion_tokens > 0 for r in ours)


def test_the_static_engines_cached_prefix_works_under_vllms_transformers(engine, static):
    """Storyboard prompts share ~700 tokens of instructions: the static engine prefills them
    once into its prefix cache (under vLLM's transformers pin, whose forward() takes the KV cache
    as past_key_values), and its greedy replies still equal vLLM's."""
    requests = [
        GenerationRequest(
            build_messages(ScriptRequest(prompt=p)), max_new_tokens=16, temperature=0.0
        )
        for p in ("制作一段关于森林探险的短视频", "城市夜景延时摄影", "一只猫的一天")
    ]
    hits = static.prefix_cache.stats()["hits"]
    theirs = results_or_raise(static.generate(requests))
    assert static.prefix_cache.stats()["hits"] - hits == len(requests)
    assert static.prefix_cache.stats()["reused_tokens"] >= 500 * len(requests)
    assert results_or_raise(engine.generate(requests)) == theirs


def test_streaming_yields_the_reply_token_by_token(engine):
    import asyncio

    request = ask(PROMPTS[0], max_new_tokens=20, ignore_eos=True)

    async def collect():
        return [delta async for delta in engine.stream(request)]

    deltas = asyncio.run(collect())
    whole = results_or_raise(engine.generate([request]))[0]
    assert "".join(d.text for d in deltas) == whole.text
    counts = [d.completion_tokens for d in deltas]
    assert counts == sorted(set(counts))  # one delta per new token (or per whole character)
    assert len(deltas) >= 5
    assert counts[-1] <= whole.completion_tokens == 20


def test_sinks_of_a_generate_call_receive_their_own_rows_text(engine):
    received: dict[int, list[str]] = {0: [], 1: []}
    requests = [ask(PROMPTS[0]), ask(PROMPTS[1])]
    sinks = [lambda d, row=row: received[row].append(d.text) for row in (0, 1)]
    results = results_or_raise(engine.generate(requests, sinks=sinks))
    assert ["".join(received[row]) for row in (0, 1)] == [r.text for r in results]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_constrained_replies_of_a_random_model_parse_and_validate(engine, seed):
    script = ScriptRequest(prompt="A cat video", num_scenes=2)
    schema = script_json_schema(script)
    request = GenerationRequest(
        build_messages(script),
        max_new_tokens=3000,
        temperature=0.8,
        top_p=0.95,
        seed=seed,
        json_schema=schema,
    )
    [result] = results_or_raise(engine.generate([request]))
    assert result.finish_reason == "stop", result
    jsonschema.validate(json.loads(result.text), schema)


def test_sampling_with_a_seed_repeats_and_a_stop_string_ends_the_reply(engine):
    sampled = ask(PROMPTS[1], temperature=1.0, top_p=0.9, seed=7, max_new_tokens=16)
    first, second = results_or_raise(engine.generate([sampled, sampled]))
    assert first.text == second.text
    greedy = results_or_raise(engine.generate([ask(PROMPTS[0], max_new_tokens=16)]))[0].text
    stop = greedy[3:5]
    [cut] = results_or_raise(engine.generate([ask(PROMPTS[0], max_new_tokens=16, stop=(stop,))]))
    assert cut.finish_reason == "stop"
    assert cut.text == greedy[: greedy.index(stop)]


def test_cancel_aborts_the_request_and_frees_its_slot(engine):
    long = ask(PROMPTS[0], max_new_tokens=4000, ignore_eos=True)
    started = time.monotonic()
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    [outcome] = engine.generate([long], cancelled=[cancel.is_set])
    assert isinstance(outcome, RequestCancelled)
    assert 0 < outcome.completion_tokens < 4000
    deadline = started + 60
    while engine.status()["scheduler"]["unfinished_requests"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.status()["scheduler"]["unfinished_requests"] == 0
    assert engine.status()["counters"]["in_flight"] == 0
    assert results_or_raise(engine.generate([ask(PROMPTS[1])]))[0].completion_tokens > 0


def test_a_prompt_without_room_fails_its_row_only(engine):
    too_long = ask("森林 " * 9000)
    outcomes = engine.generate([too_long, ask(PROMPTS[1])])
    assert isinstance(outcomes[0], PromptTooLong)
    assert outcomes[1].completion_tokens > 0


def test_status_reports_vllms_scheduler_and_prefix_cache(engine):
    shared = "同一个很长的系统提示。" * 40
    requests = [
        GenerationRequest(
            [{"role": "system", "content": shared}, {"role": "user", "content": p}],
            max_new_tokens=4,
            temperature=0.0,
        )
        for p in PROMPTS
    ]
    results_or_raise(engine.generate(requests[:1]))
    results_or_raise(engine.generate(requests[1:]))
    status = engine.status()
    assert status["engine"] == "vllm" and status["loaded"]
    assert status["scheduler"]["prefix_cache_hit_tokens"] > 0
    assert status["scheduler"]["max_running_requests_seen"] >= 2
    assert status["counters"]["requests"] >= 3


def test_engine_choice():
    assert resolve_engine("auto", "cuda", constrained_decoding=True) == "vllm"
    assert resolve_engine("auto", "cpu", constrained_decoding=True) == "static"
    assert resolve_engine("vllm", "cpu", constrained_decoding=True) == "vllm"
    engine = build_engine(EngineConfig(engine="vllm", device="cpu", vllm_max_num_seqs=4))
    assert isinstance(engine, VLLMEngine) and engine.max_num_seqs == 4


def test_missing_weights_are_model_not_available(tmp_path):
    engine = VLLMEngine(str(tmp_path / "nothing"), device="cpu")
    with pytest.raises(ModelNotAvailable, match="does not exist"):
        engine.start()
    with pytest.raises(ModelNotAvailable):
        engine.generate([ask("hi")])


def test_original_layout_is_converted_once_and_served_unload_and_load(tmp_path):
    original = make_original_chatglm3(tmp_path / "chatglm3", preset="tiny64")
    static = StaticBatchingEngine(str(original), device="cpu")
    static.start()
    engine = VLLMEngine(str(original), device="cpu", max_num_seqs=2, request_tokens=2048)
    engine.start()
    try:
        converted = tmp_path / "chatglm3-glm"
        assert engine.status()["served_path"] == str(converted)
        assert (converted / "config.json").is_file()
        requests = [ask(p) for p in PROMPTS]
        # Streamed, the static engine decodes with RowText too: a random SentencePiece model's
        # byte-fallback tokens that make no valid UTF-8 then read the same in both (a decode of
        # the whole row can merge such bytes differently).
        sinks = [lambda delta: None] * len(requests)
        assert results_or_raise(engine.generate(requests)) == results_or_raise(
            static.generate(requests, sinks=sinks)
        )
        engine.sleep()
        assert not engine.loaded
        with pytest.raises(ModelNotAvailable, match="unloaded"):
            engine.generate(requests)
        stamp = (converted / "config.json").stat().st_mtime_ns
        engine.wakeup()
        assert (converted / "config.json").stat().st_mtime_ns == stamp  # not converted again
        assert results_or_raise(engine.generate(requests[:1]))[0].completion_tokens > 0
    finally:
        engine.sleep()
