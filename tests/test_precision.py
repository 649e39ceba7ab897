"""int8/nf4 on CPU, `auto` sizing, and surviving out-of-memory at load and during a batch.

Out-of-memory is injected where torch raises it (inside `from_pretrained` / `generate`), and the
real loader and engine handle it.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, GlmForCausalLM

from deployments.engine.base import GenerationRequest, RowFailed
from deployments.engine.chatglm3 import glm_config
from deployments.engine.loading import ModelNotAvailable, load_model
from deployments.engine.quantization import GIB, choose_precision, model_shape
from deployments.engine.static_batching import StaticBatchingEngine
from scripts.make_tiny_model import (
    ORIGINAL_CONFIG,
    ORIGINAL_PRESETS,
    make_original_chatglm3,
    make_tiny_model,
)
from serve_app.config import Settings

QUANTIZED_LAYERS = {"int8": "Linear8bitLt", "nf4": "Linear4bit"}
# Relative L2 distance of the logits from fp32 on the tiny random models (measured: int8 ≈ 0.02,
# nf4 ≈ 0.15).
LOGIT_TOLERANCE = {"bf16": 0.03, "int8": 0.05, "nf4": 0.3}


@pytest.fixture(scope="module")
def native_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny-native"))


@pytest.fixture(scope="module")
def original_dir(tmp_path_factory):
    return make_original_chatglm3(tmp_path_factory.mktemp("tiny-chatglm3"), seed=3)


@pytest.mark.parametrize("layout", ["native", "original"])
@pytest.mark.parametrize("precision", ["bf16", "int8", "nf4"])
def test_precision_stays_close_to_fp32_and_generates(request, layout, precision):
    path = request.getfixturevalue(f"{layout}_dir")
    ids = torch.tensor([list(range(5, 60))])
    reference = load_model(path, "fp32", "cpu").model(ids).logits
    loaded = load_model(path, precision, "cpu")
    assert loaded.precision == precision
    layer_type = type(loaded.model.model.layers[0].mlp.gate_up_proj).__name__
    assert layer_type == QUANTIZED_LAYERS.get(precision, "Linear")
    with torch.inference_mode():
        logits = loaded.model(ids).logits.float()
    distance = ((logits - reference).norm() / reference.norm()).item()
    assert 0 < distance < LOGIT_TOLERANCE[precision]
    output = loaded.model.generate(ids, max_new_tokens=6, min_new_tokens=6, do_sample=False)
    assert output.shape == (1, ids.shape[1] + 6)


def chatglm3_6b_shape():
    """ChatGLM3-6B's own config.json mapped to GLM, counted on the meta device (no allocation)."""
    original = {**ORIGINAL_CONFIG, **ORIGINAL_PRESETS["6b"]}
    return model_shape(glm_config(original, eos_token_ids=[2, 64795, 64797]))


def test_memory_estimates_for_chatglm3_6b():
    shape = chatglm3_6b_shape()
    assert 6.2e9 < shape.parameters < 6.3e9
    assert shape.weight_bytes("fp16") == shape.parameters * 2
    assert 12.4e9 < shape.weight_bytes("fp16") < 12.6e9
    assert 6.5e9 < shape.weight_bytes("int8") < 7.0e9
    assert 3.8e9 < shape.weight_bytes("nf4") < 4.2e9
    assert shape.kv_bytes_per_token == 2 * 28 * 2 * 128 * 2


@pytest.mark.parametrize(
    ("free_gib", "expected"), [(40, "fp16"), (16, "fp16"), (10, "int8"), (7, "nf4"), (2, "nf4")]
)
def test_auto_picks_the_widest_precision_that_fits_on_cuda(free_gib, expected):
    # On this CPU-only machine the half precision is fp16 (bf16 needs an Ampere GPU).
    assert choose_precision("cuda", chatglm3_6b_shape(), free_gib * GIB) == expected


def test_auto_plans_the_kv_cache_of_the_configured_batch():
    # 16 GiB free holds fp16 weights plus the KV of a batch of 8; a batch of 64 (≈ 7.9 GiB of
    # KV) only fits beside int8 weights.
    shape = chatglm3_6b_shape()
    small, large = (Settings(max_batch_size=n).kv_cache_tokens() for n in (8, 64))
    prefix_cache = Settings().prefix_cache_tokens()
    assert large - prefix_cache == 8 * (small - prefix_cache)
    assert choose_precision("cuda", shape, 16 * GIB, small) == "fp16"
    assert choose_precision("cuda", shape, 16 * GIB, large) == "int8"


def test_auto_is_fp32_on_cpu(native_dir):
    assert choose_precision("cpu", chatglm3_6b_shape(), 0) == "fp32"
    assert load_model(native_dir, "auto", "cpu").precision == "fp32"


def oom_unless_quantized(real_from_pretrained):
    """from_pretrained that runs out of memory for any unquantized model, like a too-small GPU."""

    def from_pretrained(*args, **kwargs):
        if "quantization_config" not in kwargs:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 13.00 GiB")
        return real_from_pretrained(*args, **kwargs)

    return from_pretrained


@pytest.mark.parametrize("layout", ["native", "original"])
def test_oom_at_load_downgrades_and_reports_it(request, monkeypatch, layout):
    # The original layout is built as GlmForCausalLM from a converted state dict.
    model_class = GlmForCausalLM if layout == "original" else AutoModelForCausalLM
    monkeypatch.setattr(
        model_class, "from_pretrained", oom_unless_quantized(model_class.from_pretrained)
    )
    engine = StaticBatchingEngine(str(request.getfixturevalue(f"{layout}_dir")), "fp32", "cpu")
    engine.start()
    status = engine.status()
    assert status["precision"] == "int8"
    assert [(d["from"], d["to"]) for d in status["precision_downgrades"]] == [
        ("fp32", "fp16"),
        ("fp16", "int8"),
    ]
    assert "out of memory" in status["precision_downgrades"][0]["error"]
    request = GenerationRequest([{"role": "user", "content": "森林"}], max_new_tokens=3)
    assert engine.generate([request])[0].completion_tokens > 0


def test_oom_at_load_without_downgrade_is_model_not_available(native_dir, monkeypatch):
    monkeypatch.setattr(
        AutoModelForCausalLM,
        "from_pretrained",
        oom_unless_quantized(AutoModelForCausalLM.from_pretrained),
    )
    with pytest.raises(ModelNotAvailable, match="out of memory loading in fp32"):
        load_model(native_dir, "fp32", "cpu", allow_downgrade=False)


def requests(count: int) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            [{"role": "user", "content": f"短视频 {n}" * (n + 1)}], max_new_tokens=4, temperature=0
        )
        for n in range(count)
    ]


@pytest.fixture()
def engine(native_dir):
    engine = StaticBatchingEngine(str(native_dir), "fp32", "cpu")
    engine.start()
    return engine


def oom_above(limit: int, model):
    """`generate` that runs out of memory for batches larger than `limit`, like a full GPU."""
    real_generate = model.generate

    def generate(*args, **kwargs):
        if kwargs["input_ids"].shape[0] > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_generate(*args, **kwargs)

    return generate


def test_oom_in_a_batch_splits_it_and_every_request_still_answers(engine, monkeypatch):
    batch = requests(5)
    expected = engine.generate(batch)
    model = engine._model.model
    monkeypatch.setattr(model, "generate", oom_above(2, model))
    assert engine.generate(batch) == expected
    # 5 → 2 + 3 → 3 splits into 1 + 2
    assert engine.status()["counters"]["oom_batch_splits"] == 2


def test_a_single_request_that_still_ooms_fails_alone_and_the_engine_recovers(engine, monkeypatch):
    model = engine._model.model
    monkeypatch.setattr(model, "generate", oom_above(0, model))
    outcomes = engine.generate(requests(3))
    assert all(isinstance(o, RowFailed) and "out of memory" in str(o) for o in outcomes)
    assert engine.status()["counters"]["failures"] == 3
    monkeypatch.undo()
    assert len(engine.generate(requests(3))) == 3
