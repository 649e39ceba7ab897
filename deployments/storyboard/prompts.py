"""Chat messages that ask ChatGLM for a storyboard, in Chinese or English, plus the JSON schema
that constrained decoding holds it to.

Bump TEMPLATE_WORDING whenever a template or the schema changes; TEMPLATE_VERSION, part of the
cache key, adds a digest of the style guides (data/styles.yaml), so editing one needs no bump.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from deployments.storyboard.constants import (
    EN_NARRATION_WORDS_PER_SECOND,
    MAX_SCENE_SECONDS,
    MAX_SCENES,
    MAX_SYSTEM_PROMPT_CHARS,
    MIN_SCENE_SECONDS,
    ZH_NARRATION_CHARS_PER_SECOND,
    Camera,
    ScriptLanguage,
)
from deployments.storyboard.language import resolve_language
from deployments.storyboard.lengths import planned_duration, scene_count_range
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.narration import narration_schema_chars
from deployments.storyboard.styles import STYLES, find_style

TEMPLATE_WORDING = "2026-12-01.1"
_GUIDES = json.dumps([s.guide.model_dump() for s in STYLES.values()], ensure_ascii=False)
TEMPLATE_VERSION = f"{TEMPLATE_WORDING}+styles.{hashlib.sha256(_GUIDES.encode()).hexdigest()[:8]}"
MAX_ECHOED_OUTPUT_CHARS = 3000  # of a failed reply, shown back to the model in the repair turn

# Bounds that keep a schema-constrained reply short enough to finish within its token budget.
SCHEMA_TITLE_CHARS = 40
SCHEMA_TEXT_CHARS = 120
SCHEMA_VISUAL_PROMPT_CHARS = 200
SCHEMA_MAX_TOTAL_SECONDS = 600
# A visual prompt is for an English text-to-video model: printable ASCII, less `"` and `\`.
VISUAL_PROMPT_PATTERN = "^[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]{{1,{max_chars}}}$"

CAMERA_NAMES = ", ".join(camera.value for camera in Camera)

SYSTEM_PROMPTS: dict[ScriptLanguage, str] = {
    "zh": "你是一名专业的短视频编剧和分镜师。你根据用户的需求写出结构清晰、画面感强、"
    "前后连贯的分镜脚本：开场吸引人，中段层层推进，有高潮，有收尾。你只输出 JSON。",
    "en": "You are a professional short-video scriptwriter and storyboard artist. You turn a "
    "request into a clear, visual, coherent storyboard: a hook at the start, development, a "
    "climax and an ending. You only ever output JSON.",
}

_SCENE_EXAMPLE: dict[ScriptLanguage, dict[str, Any]] = {
    "zh": {
        "scene_number": 1,
        "description": "画面里看到什么（中文）",
        "duration": 5,
        "camera": "wide shot",
        "action": "镜头中发生的动作（中文）",
        "narration": "旁白（中文）",
        "visual_prompt": "English prompt for a text-to-video model",
    },
    "en": {
        "scene_number": 1,
        "description": "what the viewer sees",
        "duration": 5,
        "camera": "wide shot",
        "action": "what moves or happens in the shot",
        "narration": "voice-over line",
        "visual_prompt": "English prompt for a text-to-video model",
    },
}

# The fixed rules come first and the request last, so every request in a language starts with
# the same few hundred tokens: the engine's prefix cache prefills them once (deployments/engine/
# prefix_cache.py), and the request sits right before the answer.
_USER_TEMPLATES: dict[ScriptLanguage, str] = {
    "zh": """请为下面的需求写一个短视频分镜脚本。
语言：title、description、action、narration 用中文；visual_prompt 必须用英文
camera 只能取以下值之一：{cameras}
所有场景的 duration 之和等于总时长。每个场景内容不同，不要重复。
旁白要能在场景时长内读完：每秒不超过 {zh_rate} 个字。
只输出一个 JSON 对象，不要代码块，不要任何解释。格式：
{example}

需求：{prompt}
风格：{style}
总时长：{duration} 秒
场景数：{scenes}
画幅：{aspect_ratio}{look}""",
    "en": """Write a short-video storyboard for the request below.
Language: title, description, action and narration in English; visual_prompt in English
camera must be one of: {cameras}
The scenes' durations must add up to the total length. Every scene must be different.
Narration must be speakable in its scene's time: at most {en_rate} words per second.
Output one JSON object only: no code fences, no explanations. Format:
{example}

Request: {prompt}
Style: {style}
Total length: {duration} seconds
Number of scenes: {scenes}
Aspect ratio: {aspect_ratio}{look}""",
}

_REPAIR_TEMPLATES: dict[ScriptLanguage, str] = {
    "zh": "上面的输出不符合要求：{problems}\n请改正后重新输出完整的 JSON 对象，格式同上，"
    "只输出 JSON，不要任何解释。",
    "en": "That output is not valid: {problems}\nOutput the corrected, complete JSON object in "
    "the same format. JSON only, no explanations.",
}

_DEFAULT_STYLE: dict[ScriptLanguage, str] = {"zh": "由你根据内容决定", "en": "your choice"}
_VISUAL_STYLE: dict[ScriptLanguage, str] = {
    "zh": "\n画面风格（每个场景一致）：{style}",
    "en": "\nVisual style (the same in every scene): {style}",
}
_CHARACTERS: dict[ScriptLanguage, str] = {
    "zh": "\n角色（第一个是主角；每个场景的 characters 列出出场角色）：\n{lines}",
    "en": "\nCharacters (the first is the protagonist; each scene's characters lists who is "
    "in it):\n{lines}",
}


def build_messages(
    request: ScriptRequest, system_prompt: str | None = None
) -> list[dict[str, str]]:
    """System + user messages asking for `request`'s storyboard as JSON.

    A custom `system_prompt` replaces the persona only; the format rules travel in the user
    message, so a custom persona cannot break parsing.
    """
    language = resolve_language(request)
    return [
        {"role": "system", "content": _system_prompt(language, system_prompt)},
        {"role": "user", "content": _user_prompt(request, language)},
    ]


def build_repair_messages(
    request: ScriptRequest, bad_output: str, problems: str, system_prompt: str | None = None
) -> list[dict[str, str]]:
    """The original conversation, the failed reply, and what was wrong with it: one retry."""
    language = resolve_language(request)
    return [
        *build_messages(request, system_prompt),
        {"role": "assistant", "content": bad_output[:MAX_ECHOED_OUTPUT_CHARS]},
        {"role": "user", "content": _REPAIR_TEMPLATES[language].format(problems=problems)},
    ]


def script_json_schema(request: ScriptRequest) -> dict[str, Any]:
    """The VideoScript schema with every string, number and list bounded, for constrained
    decoding; `scenes` comes last so that a budget-limited reply closes in a few tokens.

    It binds what the request fixes: exactly `num_scenes` scenes (else the count range that
    fits the total), scene lengths the total can hold, narration within the budget of an
    average scene, visual prompts in printable ASCII, and characters from the request's list.
    """
    total = planned_duration(request.duration_s, request.num_scenes)
    language = resolve_language(request)
    fewest, most = (
        (request.num_scenes, request.num_scenes) if request.num_scenes else scene_count_range(total)
    )

    def text(max_chars: int) -> dict[str, Any]:
        # No quotes, backslashes or control characters: every character is itself, so the
        # length bound is a token bound too, and the JSON stays strictly valid.
        return {"type": "string", "pattern": f'^[^"\\\\\\x00-\\x1f]{{1,{max_chars}}}$'}

    narration_chars = narration_schema_chars(total / fewest, language)
    properties: dict[str, Any] = {
        "scene_number": {"type": "integer", "minimum": 1, "maximum": MAX_SCENES},
        "description": text(SCHEMA_TEXT_CHARS),
        "duration": {
            "type": "integer",
            "minimum": MIN_SCENE_SECONDS,
            "maximum": min(MAX_SCENE_SECONDS, total),
        },
        "camera": {"type": "string", "enum": [camera.value for camera in Camera]},
        "action": text(SCHEMA_TEXT_CHARS),
        "narration": text(min(SCHEMA_TEXT_CHARS, narration_chars)),
        "visual_prompt": {
            "type": "string",
            "pattern": VISUAL_PROMPT_PATTERN.format(max_chars=SCHEMA_VISUAL_PROMPT_CHARS),
        },
    }
    if request.characters:
        properties["characters"] = {
            "type": "array",
            "items": {"type": "string", "enum": [c.name for c in request.characters]},
            "maxItems": len(request.characters),
        }
    scene = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "title": text(SCHEMA_TITLE_CHARS),
            "language": {"type": "string", "enum": [language]},
            "total_duration": {
                "type": "integer",
                "minimum": 1,
                "maximum": SCHEMA_MAX_TOTAL_SECONDS,
            },
            "scenes": {"type": "array", "items": scene, "minItems": fewest, "maxItems": most},
        },
        "required": ["title", "language", "total_duration", "scenes"],
        "additionalProperties": False,
    }


def _system_prompt(language: ScriptLanguage, custom: str | None) -> str:
    if custom is None or not custom.strip():
        return SYSTEM_PROMPTS[language]
    if len(custom) > MAX_SYSTEM_PROMPT_CHARS:
        raise ValueError(
            f"system prompt is {len(custom)} characters, over {MAX_SYSTEM_PROMPT_CHARS}"
        )
    return custom.strip()


def _user_prompt(request: ScriptRequest, language: ScriptLanguage) -> str:
    total = planned_duration(request.duration_s, request.num_scenes)
    if request.num_scenes:
        scenes = str(request.num_scenes)
    else:
        low, high = scene_count_range(total)
        scenes = f"{low} 到 {high} 个，按内容决定" if language == "zh" else f"{low} to {high}"
    return _USER_TEMPLATES[language].format(
        prompt=request.prompt,
        style=_style_guide(request.style, language),
        duration=total,
        scenes=scenes,
        cameras=CAMERA_NAMES,
        example=json.dumps(_example(request, language), ensure_ascii=False),
        zh_rate=ZH_NARRATION_CHARS_PER_SECOND,
        en_rate=EN_NARRATION_WORDS_PER_SECOND,
        aspect_ratio=request.aspect_ratio,
        look=_look(request, language),
    )


def _look(request: ScriptRequest, language: ScriptLanguage) -> str:
    """The request's visual style and characters, as lines of the prompt (none when absent)."""
    look = ""
    if request.visual_style:
        look += _VISUAL_STYLE[language].format(style=request.visual_style)
    if request.characters:
        lines = "\n".join(f"- {c.name}: {c.description}" for c in request.characters)
        look += _CHARACTERS[language].format(lines=lines)
    return look


def _style_guide(style: str | None, language: ScriptLanguage) -> str:
    """The known style's guide (data/styles.yaml), or the client's own words for an unknown one."""
    if not style:
        return _DEFAULT_STYLE[language]
    known = find_style(style)
    return known.guide.in_language(language) if known else style.strip()


def _example(request: ScriptRequest, language: ScriptLanguage) -> dict[str, Any]:
    title = "标题" if language == "zh" else "Title"
    scene = dict(_SCENE_EXAMPLE[language])
    if request.characters:
        scene["characters"] = [request.characters[0].name]
    return {"title": title, "language": language, "total_duration": 5, "scenes": [scene]}
