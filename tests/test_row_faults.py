"""A fault in one request fails that request only (issue 11, item 5), and a request whose caller
has gone stops generating: the real EngineFeeder in front of the real static engine on the tiny
model. Faults are injected below the engine, in the model's forward pass, only when a batch holds
a token that one row's prompt alone has."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable

import pytest
import torch
from conftest import ask

from deployments.engine import (
    ContinuousBatchingEngine,
    GenerationResult,
    ModelNotAvailable,
    StaticBatchingEngine,
)
from deployments.engine.base import RequestCancelled, RowFailed
from deployments.engine.tokenizer import encode_chat
from deployments.engine_feeder import EngineFeeder, Ticket

PROMPTS = [f"scene {n}: a city at night" for n in range(8)]
POISONED = 5
PROMPTS[POISONED] = "制作一段关于森林探险的短视频"


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    engine = StaticBatchingEngine(str(tiny_model_dir), device="cpu", prefix_cache_entries=0)
    engine.start()
    return engine


def marker_token(engine, index: int) -> int:
    """A token that request `index`'s prompt has and no other prompt of PROMPTS has."""
    tokenizer = engine._model.tokenizer
    ids = [set(encode_chat(tokenizer, ask(p).messages)) for p in PROMPTS]
    others = set().union(*(ids[i] for i in range(len(ids)) if i != index))
    return min(ids[index] - others)


def failing_forward(model, marker: int, error: Callable[[], Exception]):
    """The model's forward, raising `error()` whenever its input holds `marker`."""
    forward = model.forward

    def guarded(*args, **kwargs):
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if input_ids is not None and bool((input_ids == marker).any()):
            raise error()
        return forward(*args, **kwargs)

    return guarded


def through_the_feeder(engine, requests, max_batch_size: int = 8) -> list:
    async def scenario():
        feeder = EngineFeeder(engine.generate, max_batch_size)
        return await feeder.generate([Ticket(request) for request in requests])

    return asyncio.run(scenario())


@pytest.mark.parametrize(
    ("error", "splits"),
    [
        (lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), 3),
        (lambda: ValueError("a fault only this row's input causes"), 0),
    ],
    ids=["out-of-memory", "other-error"],
)
def test_a_fault_in_one_row_of_eight_fails_that_row_only(engine, monkeypatch, error, splits):
    requests = [ask(p, max_new_tokens=6, ignore_eos=True) for p in PROMPTS]
    alone = [engine.generate([r])[0] for r in requests]
    model = engine._model.model
    monkeypatch.setattr(
        model, "forward", failing_forward(model, marker_token(engine, POISONED), error)
    )
    splits_before = engine.oom_batch_splits
    failures_before = engine.counters.failures
    outcomes = through_the_feeder(engine, requests)
    assert [isinstance(o, GenerationResult) for o in outcomes] == [i != POISONED for i in range(8)]
    failed = outcomes[POISONED]
    assert isinstance(failed, RowFailed)
    if splits:  # 8 → 4 + 4 → 2 + 2 → 1 + 1: the poisoned row ends up alone
        assert "out of memory generating this request alone" in str(failed)
    assert engine.oom_batch_splits - splits_before == splits
    assert engine.counters.failures - failures_before == 1
    completed = [o for i, o in enumerate(outcomes) if i != POISONED]
    assert [o.text for o in completed] == [o.text for i, o in enumerate(alone) if i != POISONED]
    assert all(o.completion_tokens == 6 for o in completed)


def test_an_engine_that_cannot_run_fails_every_caller(tiny_model_dir):
    engine = StaticBatchingEngine(str(tiny_model_dir), device="cpu")
    engine.start()
    engine.sleep()
    outcomes = through_the_feeder(engine, [ask("a"), ask("b")])
    assert all(isinstance(o, ModelNotAvailable) for o in outcomes)


def test_a_row_cancelled_while_generating_stops_at_its_next_token(engine, monkeypatch):
    """Its caller gives up after the batch's 10th forward pass; it stops there, the others
    generate their whole budget. Counted in tokens: the long row would have made 4000."""
    requests = [ask(p, max_new_tokens=20, ignore_eos=True) for p in PROMPTS[:3]]
    requests.append(ask("a very long reply", max_new_tokens=4000, ignore_eos=True))
    tickets = [Ticket(request) for request in requests]
    model = engine._model.model
    forward = model.forward
    passes = [0]

    def counting(*args, **kwargs):
        passes[0] += 1
        if passes[0] == 10:
            tickets[3].cancelled = True  # what ChatGLMDeployment.chat does when Serve cancels
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", counting)

    async def scenario():
        return await EngineFeeder(engine.generate, 8).generate(tickets)

    generated_before = engine.counters.generated_tokens
    outcomes = asyncio.run(scenario())
    assert [o.completion_tokens for o in outcomes[:3]] == [20, 20, 20]
    cancelled = outcomes[3]
    assert isinstance(cancelled, RequestCancelled)
    assert 9 <= cancelled.completion_tokens <= 11
    assert passes[0] <= 21  # the batch ended with the short rows, not 4000 tokens later
    assert engine.counters.generated_tokens - generated_before == 60


def test_a_ticket_cancelled_before_its_batch_runs_is_not_generated(engine):
    tickets = [Ticket(ask("a", max_new_tokens=2)), Ticket(ask("b", max_new_tokens=2))]
    tickets[0].cancelled = True

    async def scenario():
        return await EngineFeeder(engine.generate, 8).generate(tickets)

    skipped, done = asyncio.run(scenario())
    assert skipped is None and isinstance(done, GenerationResult)


@pytest.fixture(scope="module")
def short_context_dir(tiny_model_dir, tmp_path_factory):
    """The tiny checkpoint with a 64-position context."""
    path = tmp_path_factory.mktemp("models") / "short"
    shutil.copytree(tiny_model_dir, path)
    config = json.loads((path / "config.json").read_text())
    config["max_position_embeddings"] = 64
    (path / "config.json").write_text(json.dumps(config))
    return path


@pytest.mark.parametrize("kind", [StaticBatchingEngine, ContinuousBatchingEngine])
def test_requests_are_cut_to_the_context_and_one_that_cannot_fit_fails_alone(
    short_context_dir, kind
):
    engine = kind(str(short_context_dir), device="cpu")
    engine.start()
    try:
        fits, too_long, small = engine.generate(
            [
                ask("hi", max_new_tokens=500, ignore_eos=True),
                ask("city lights " * 40, max_new_tokens=5),
                ask("hello", max_new_tokens=3, ignore_eos=True),
            ]
        )
    finally:
        engine.sleep()
    assert fits.prompt_tokens + fits.completion_tokens == 64
    assert isinstance(too_long, RowFailed) and "context is 64" in str(too_long)
    assert small.completion_tokens == 3


def test_the_continuous_engine_cancels_a_request_whose_caller_has_gone(tiny_model_dir):
    engine = ContinuousBatchingEngine(str(tiny_model_dir), device="cpu")
    engine.start()
    model = engine._model.model
    forward = model.forward
    passes = [0]

    def counting(*args, **kwargs):
        passes[0] += 1
        return forward(*args, **kwargs)

    model.forward = counting
    try:
        short, long = engine.generate(
            [
                ask("short", max_new_tokens=5, ignore_eos=True),
                ask("a very long reply", max_new_tokens=4000, ignore_eos=True),
            ],
            [lambda: False, lambda: passes[0] >= 10],
        )
        assert short.completion_tokens == 5
        assert isinstance(long, RequestCancelled)
        assert engine.status()["counters"]["in_flight"] == 0
    finally:
        engine.sleep()
    assert passes[0] < 2000  # it stopped long before its 4000 tokens
