"""Prompt templates: what the model is told, in which language, and that it matches the schema."""

from __future__ import annotations

import json

import jsonschema
import pytest

from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.parser import parse_script
from deployments.storyboard.prompts import (
    CAMERA_NAMES,
    MAX_ECHOED_OUTPUT_CHARS,
    MAX_SYSTEM_PROMPT_CHARS,
    SYSTEM_PROMPTS,
    TEMPLATE_VERSION,
    build_messages,
    build_repair_messages,
    script_json_schema,
)

FOREST = ScriptRequest(prompt="制作一段关于森林探险的短视频", style="电影感", duration_s=45)


def _example_in(user_message: str) -> dict:
    return json.JSONDecoder().raw_decode(user_message, user_message.index("{"))[0]


def test_chinese_request_gets_chinese_messages_with_every_requirement():
    system, user = build_messages(FOREST)
    assert (system["role"], user["role"]) == ("system", "user")
    assert system["content"] == SYSTEM_PROMPTS["zh"]
    content = user["content"]
    assert FOREST.prompt in content
    assert "45 秒" in content
    assert "3 到 8 个" in content
    assert "戏剧化的光影" in content  # the cinematic style guide, in Chinese
    assert CAMERA_NAMES in content
    assert _example_in(content)["language"] == "zh"


@pytest.mark.parametrize("language", ["zh", "en"])
def test_requests_in_one_language_share_everything_up_to_the_request(language: str):
    # The engine's prefix cache prefills this shared start once for all requests.
    first, second = (
        ScriptRequest(prompt=p, language=language, num_scenes=n, duration_s=d, style=s)
        for p, n, d, s in [("森林探险", 3, 30, "anime"), ("城市夜景", None, 60, None)]
    )
    a, b = (build_messages(r)[1]["content"] for r in (first, second))
    shared = a[: next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)]
    assert json.dumps(_example_in(a), ensure_ascii=False) in shared  # rules and example
    assert first.prompt not in shared and first.prompt in a


def test_english_request_gets_english_messages():
    request = ScriptRequest(prompt="A forest adventure", num_scenes=4, style="watercolor")
    system, user = build_messages(request)
    assert system["content"] == SYSTEM_PROMPTS["en"]
    assert "Number of scenes: 4" in user["content"]
    assert "Style: watercolor" in user["content"]
    assert "Total length: 30 seconds" in user["content"]


def test_language_override_switches_the_template():
    _, user = build_messages(ScriptRequest(prompt="制作森林探险视频", language="en"))
    assert user["content"].startswith("Write a short-video storyboard")


def test_custom_system_prompt_replaces_the_persona_but_not_the_format_rules():
    system, user = build_messages(FOREST, system_prompt="你是一位儿童节目编剧。")
    assert system["content"] == "你是一位儿童节目编剧。"
    assert "只输出一个 JSON 对象" in user["content"]
    assert build_messages(FOREST, system_prompt="  ")[0]["content"] == SYSTEM_PROMPTS["zh"]


def test_overlong_system_prompt_is_refused():
    with pytest.raises(ValueError, match="system prompt"):
        build_messages(FOREST, system_prompt="x" * (MAX_SYSTEM_PROMPT_CHARS + 1))


def test_repair_turn_echoes_the_bad_reply_and_the_problems():
    bad = "{" * (MAX_ECHOED_OUTPUT_CHARS + 10)
    messages = build_repair_messages(FOREST, bad, "scenes: field required")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == bad[:MAX_ECHOED_OUTPUT_CHARS]
    assert "scenes: field required" in messages[3]["content"]
    assert messages[:2] == build_messages(FOREST)


@pytest.mark.parametrize("characters", [[], [{"name": "Mia", "description": "a red coat"}]])
@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_example_in_the_prompt_satisfies_the_schema_and_the_parser(
    language: str, characters: list
):
    # The example shows one scene, so it is checked against a one-scene request's schema.
    prompt = "森林" if language == "zh" else "forest"
    request = ScriptRequest(prompt=prompt, num_scenes=1, characters=characters)
    example = _example_in(build_messages(request)[1]["content"])
    jsonschema.validate(example, script_json_schema(request))
    assert parse_script(json.dumps(example, ensure_ascii=False), request).language == language


def test_schema_bounds_the_scene_count_by_the_request():
    schema = script_json_schema(ScriptRequest(prompt="x", num_scenes=12))
    assert schema["properties"]["scenes"]["maxItems"] == 12
    assert list(schema["properties"])[-1] == "scenes"  # closing a cut-off reply takes few tokens
    assert TEMPLATE_VERSION
