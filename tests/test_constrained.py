"""Grammar-constrained decoding: per-row masks, the closing guarantee, and the real engine path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import torch
from transformers import AutoTokenizer

from deployments.engine import GenerationRequest, StaticBatchingEngine
from deployments.engine.constrained import JsonSchemaLogitsProcessor, closing_reserve
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.parser import parse_script
from deployments.storyboard.prompts import build_messages, script_json_schema

ROOT = Path(__file__).resolve().parents[1]
FOREST = ScriptRequest(prompt="制作一段关于森林探险的短视频")
CAT = ScriptRequest(prompt="A cat video", num_scenes=2)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    engine = StaticBatchingEngine(str(tiny_model_dir), device="cpu")
    engine.start()
    return engine


def stop_id(tokenizer) -> int:
    return tokenizer.eos_token_id


def processor(tokenizer, schemas, budgets):
    return JsonSchemaLogitsProcessor(
        tokenizer, schemas, budgets, len(tokenizer), [stop_id(tokenizer)]
    )


def without_patterns(schema):
    """The schema minus string patterns: xgrammar 0.2.8 lets byte-level vocabularies write
    overlong UTF-8 (e.g. E0 92 A5), which decodes to U+FFFD characters and can push a string
    past its length bound; everything else (structure, enums, ranges, counts) must hold."""
    if isinstance(schema, dict):
        return {k: without_patterns(v) for k, v in schema.items() if k != "pattern"}
    if isinstance(schema, list):
        return [without_patterns(v) for v in schema]
    return schema


def closing_budget(schema) -> int:
    """The engine's closing reserve covers finishing one scene; a schema that requires n scenes
    (minItems: the request's exact count, else the low end of its range) needs n of them."""
    return closing_reserve(schema) * schema["properties"]["scenes"]["minItems"]


def random_walk(tokenizer, schema, budget: int, seed: int) -> tuple[str, bool]:
    """Decode `budget` tokens from random logits through the processor; (text, stopped)."""
    generator = torch.Generator().manual_seed(seed)
    constraint = processor(tokenizer, [schema], [budget])
    ids = torch.zeros((1, 1), dtype=torch.long)
    for _ in range(budget):
        scores = torch.randn((1, len(tokenizer)), generator=generator)
        token = int(constraint(ids, scores).argmax())
        if token == stop_id(tokenizer):
            return tokenizer.decode(ids[0, 1:].tolist()), True
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return tokenizer.decode(ids[0, 1:].tolist()), False


def test_closing_reserve_is_the_longest_minimal_scene_plus_margin():
    worst_scene = (
        '{"scene_number": 20, "description": "😀", "duration": 30, "camera": "extreme close up", '
        '"action": "😀", "narration": "😀", "visual_prompt": "😀"}'
    )
    assert closing_reserve(script_json_schema(FOREST)) == len(worst_scene.encode()) + 16


@pytest.mark.parametrize("seed", range(12))
def test_random_logits_always_close_a_valid_script_within_the_budget(tokenizer, seed: int):
    schema = script_json_schema(CAT if seed % 2 else FOREST)
    budget = closing_budget(schema) + 80 + 40 * (seed % 3)
    text, stopped = random_walk(tokenizer, schema, budget, seed)
    assert stopped, text
    document = json.loads(text)  # strict: no control characters, no bad escapes
    jsonschema.validate(document, without_patterns(schema))
    assert parse_script(text, CAT if seed % 2 else FOREST).scenes


def test_rows_without_a_schema_are_untouched(tokenizer):
    constraint = processor(tokenizer, [script_json_schema(FOREST), None], [300, 300])
    scores = torch.randn((2, len(tokenizer)))
    original = scores.clone()
    masked = constraint(torch.zeros((2, 1), dtype=torch.long), scores)
    assert torch.equal(masked[1], original[1])
    allowed = [tokenizer.decode([t]) for t in torch.isfinite(masked[0]).nonzero().flatten()]
    assert allowed and all(text == "{" or text.startswith('{"') for text in allowed)


def test_a_row_whose_allowed_tokens_were_all_banned_upstream_is_released(tokenizer):
    constraint = processor(tokenizer, [script_json_schema(FOREST)], [300])
    scores = torch.zeros((1, len(tokenizer)))
    allowed = torch.isfinite(constraint(torch.zeros((1, 1), dtype=torch.long), scores.clone()))
    banned = scores.clone()
    banned[allowed] = float("-inf")  # e.g. min_new_tokens banning the only token the grammar wants
    constraint = processor(tokenizer, [script_json_schema(FOREST)], [300])
    released = constraint(torch.zeros((1, 1), dtype=torch.long), banned)
    assert torch.isfinite(released).any()
    off_grammar = int(released.argmax())
    again = constraint(torch.tensor([[0, off_grammar]]), torch.zeros((1, len(tokenizer))))
    assert torch.isfinite(again).all()  # the row is unconstrained from now on


def test_engine_batch_mixes_constrained_and_free_rows(engine):
    schemas = [script_json_schema(FOREST), script_json_schema(CAT), None]
    budgets = [closing_budget(schemas[0]) + 80, closing_budget(schemas[1]) + 120, 24]
    requests = [
        GenerationRequest(build_messages(r), max_new_tokens=b, temperature=0, json_schema=s)
        for r, b, s in zip([FOREST, CAT, FOREST], budgets, schemas, strict=True)
    ]
    results = engine.generate(requests)
    for result, schema, request in zip(results[:2], schemas[:2], [FOREST, CAT], strict=True):
        assert result.finish_reason == "stop", result.text
        jsonschema.validate(json.loads(result.text), without_patterns(schema))
        assert parse_script(result.text, request).language == json.loads(result.text)["language"]
    # The free row reads exactly as it does when no row in the batch is constrained.
    free = [GenerationRequest(r.messages, max_new_tokens=24, temperature=0) for r in requests]
    assert engine.generate(free)[2].text == results[2].text


def test_sentencepiece_tokenizer_with_chinese(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("chatglm3") / "tiny"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_tiny_model.py"), str(model_dir),
         "--layout", "chatglm3"],
        check=True, capture_output=True,
    )  # fmt: skip
    engine = StaticBatchingEngine(str(model_dir), device="cpu")
    engine.start()
    schema = script_json_schema(FOREST)
    request = GenerationRequest(
        build_messages(FOREST), max_new_tokens=closing_budget(schema) + 80, temperature=0,
        json_schema=schema,
    )  # fmt: skip
    [result] = engine.generate([request])
    assert result.finish_reason == "stop"
    jsonschema.validate(json.loads(result.text), without_patterns(schema))
    assert parse_script(result.text, FOREST).language == "zh"
