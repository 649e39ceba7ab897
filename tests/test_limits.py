"""Prompt budgets counted in the model's tokens (issue 11, item 6): with the tiny model's real
tokenizer when the checkpoint is there, with the conservative estimate when it is not."""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from deployments.engine.config import PROMPT_TEMPLATE_TOKENS
from deployments.engine.tokenizer import encode_chat, load_tokenizer
from deployments.storyboard.constants import MAX_PROMPT_CHARS
from deployments.storyboard.language import estimated_tokens
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.prompts import build_messages
from deployments.storyboard.styles import STYLES
from serve_app.config import Settings
from serve_app.errors import FieldError, install_error_handlers
from serve_app.limits import TOKENIZER_RETRY_S, PromptCounter, check_prompt_limits

DEVANAGARI = "नमस्ते दुनिया यह एक छोटा वीडियो है " * 60  # 2,040 characters, 3 UTF-8 bytes each
DEVANAGARI = DEVANAGARI[:MAX_PROMPT_CHARS]
FOREST = "制作一段关于森林探险的短视频"


def check(request: ScriptRequest, settings: Settings, counter: PromptCounter | None = None):
    return asyncio.run(check_prompt_limits(request, settings, counter))


def settings_for(model_path, **args) -> Settings:
    return Settings(model_path=str(model_path), **args)


def test_the_old_estimate_let_devanagari_through_at_a_quarter_of_its_tokens(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    actual = len(tokenizer(DEVANAGARI, add_special_tokens=False)["input_ids"])
    old_estimate = len(DEVANAGARI) // 4  # one token per 4 characters that are not wide
    assert old_estimate <= 500 < Settings().max_prompt_tokens < actual
    assert estimated_tokens(DEVANAGARI) >= actual


def test_a_devanagari_prompt_is_refused_by_its_real_token_count(tiny_model_dir):
    settings = settings_for(tiny_model_dir)
    with pytest.raises(FieldError) as error:
        check(ScriptRequest(prompt=DEVANAGARI), settings)
    assert error.value.field == "body.prompt"
    tokenizer = load_tokenizer(tiny_model_dir)
    actual = len(tokenizer(DEVANAGARI, add_special_tokens=False)["input_ids"])
    assert f"is {actual} tokens" in error.value.problem  # counted, not "about"
    assert f"the limit is {settings.max_prompt_tokens}" in error.value.problem


def test_without_a_model_the_same_prompt_is_refused_by_the_estimate(tmp_path):
    settings = settings_for(tmp_path / "no-model-here")
    with pytest.raises(FieldError) as error:
        check(ScriptRequest(prompt=DEVANAGARI), settings)
    assert error.value.field == "body.prompt"
    assert f"is about {estimated_tokens(DEVANAGARI)} tokens" in error.value.problem


@pytest.mark.parametrize("model", ["tiny", "none"])
def test_ordinary_prompts_pass(tiny_model_dir, tmp_path, model):
    settings = settings_for(tiny_model_dir if model == "tiny" else tmp_path / "none")
    for prompt in (FOREST * 100, "A forest adventure at dawn, " * 60):
        tokens = check(ScriptRequest(prompt=prompt, style="cinematic"), settings)
        assert tokens.exact == (model == "tiny")
        assert tokens.user_text <= settings.max_prompt_tokens


def test_estimates_stay_sane_for_chinese_and_english():
    assert estimated_tokens(FOREST) == len(FOREST)
    assert estimated_tokens("A forest adventure") == 5  # 18 characters, one token per 4
    assert estimated_tokens("“森林”，探险。") == 8
    assert estimated_tokens("क") == 3 and estimated_tokens("😀") == 4 and estimated_tokens("é") == 2


@pytest.mark.parametrize(
    "text",
    [DEVANAGARI, "สวัสดีชาวโลก" * 20, "Привет, мир! " * 20, "مرحبا بالعالم " * 20, "😀🎬" * 50],
)
def test_the_estimate_never_undercounts_a_byte_level_tokenizer_outside_ascii_and_cjk(
    tiny_model_dir, text
):
    tokenizer = load_tokenizer(tiny_model_dir)
    assert estimated_tokens(text) >= len(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_style_and_system_prompt_count_and_the_largest_field_is_named(tiny_model_dir):
    settings = settings_for(tiny_model_dir, max_prompt_tokens=400)
    request = ScriptRequest(
        prompt="A forest adventure", style="film noir", system_prompt="Напиши сценарий. " * 20
    )
    with pytest.raises(FieldError) as error:
        check(request, settings)
    assert error.value.field == "body.system_prompt"
    assert "prompt " in error.value.problem and "style " in error.value.problem
    check(request.model_copy(update={"system_prompt": "Write a storyboard."}), settings)


def test_the_whole_prompt_and_the_generation_budget_must_fit_the_context(tiny_model_dir, tmp_path):
    model = tmp_path / "short-context"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["max_position_embeddings"] = 1024
    (model / "config.json").write_text(json.dumps(config))
    request = ScriptRequest(prompt=FOREST)
    tokenizer = load_tokenizer(model)
    rendered = len(encode_chat(tokenizer, build_messages(request)))
    fits = 1024 - rendered
    check(request, settings_for(model, max_new_tokens=fits))
    with pytest.raises(FieldError) as error:
        check(request, settings_for(model, max_new_tokens=fits + 1))
    assert error.value.field == "body.prompt"
    assert f"{rendered} tokens" in error.value.problem and "context of 1024" in error.value.problem


def test_the_tokenizer_loads_once_and_is_looked_for_again_when_the_model_appears(
    tiny_model_dir, tmp_path
):
    now = [0.0]
    model = tmp_path / "downloaded-later"
    counter = PromptCounter(str(model), clock=lambda: now[0])
    settings = settings_for(model)
    request = ScriptRequest(prompt=FOREST)
    assert not check(request, settings, counter).exact
    shutil.copytree(tiny_model_dir, model)
    now[0] += TOKENIZER_RETRY_S / 2
    assert not check(request, settings, counter).exact  # not looked for again yet
    now[0] += TOKENIZER_RETRY_S
    assert check(request, settings, counter).exact
    loaded = counter._loaded
    shutil.rmtree(model)  # a loaded tokenizer is kept: never loaded per request
    assert check(request, settings, counter).exact and counter._loaded is loaded


def test_a_limit_answers_422_naming_the_field(tiny_model_dir):
    app = FastAPI()
    install_error_handlers(app)
    settings = settings_for(tiny_model_dir)

    @app.post("/scripts")
    async def accept(request: ScriptRequest) -> dict:
        return (await check_prompt_limits(request, settings)).fields

    client = TestClient(app)
    response = client.post("/scripts", json={"prompt": DEVANAGARI})
    assert response.status_code == 422
    assert [f["field"] for f in response.json()["error"]["fields"]] == ["body.prompt"]
    assert client.post("/scripts", json={"prompt": FOREST}).status_code == 200


@pytest.mark.parametrize("model", ["tiny", "none"])
def test_the_template_stays_within_the_allowance_the_kv_plan_gives_it(
    tiny_model_dir, tmp_path, model
):
    """precision: auto plans PROMPT_TEMPLATE_TOKENS per request for everything around the user's
    text; the longest style guide in either language must fit it."""
    counter = PromptCounter(str(tiny_model_dir if model == "tiny" else tmp_path / "none"))
    for language in ("zh", "en"):
        for style in (None, *STYLES):
            request = ScriptRequest(prompt="x", language=language, style=style)
            tokens = asyncio.run(counter.count(request, None))
            assert tokens.rendered - tokens.user_text <= PROMPT_TEMPLATE_TOKENS, (language, style)
