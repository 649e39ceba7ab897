"""Chat messages that ask ChatGLM for a storyboard in the script's language (the templates are
data/languages/<code>.yaml), plus the JSON schema that constrained decoding holds it to.

Bump TEMPLATE_WORDING whenever the code's wording or the schema changes; TEMPLATE_VERSION, part
of the cache key, adds digests of the style guides (data/styles.yaml) and the language files'
prompts, so editing those needs no bump.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from deployments.storyboard.constants import (
    MAX_SCENE_SECONDS,
    MAX_SCENES,
    MAX_SYSTEM_PROMPT_CHARS,
    MIN_SCENE_SECONDS,
    NARRATION_RATES,
    Camera,
    ScriptLanguage,
)
from deployments.storyboard.language import resolve_language
from deployments.storyboard.languages import LANGUAGES
from deployments.storyboard.lengths import planned_duration, scene_count_range
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.narration import narration_schema_chars
from deployments.storyboard.styles import STYLES, find_style

TEMPLATE_WORDING = "2026-12-20.1"
_GUIDES = json.dumps([s.guide.model_dump() for s in STYLES.values()], ensure_ascii=False)
_PROMPTS = json.dumps(
    {code: language.prompts.model_dump() for code, language in LANGUAGES.items()},
    ensure_ascii=False,
)
TEMPLATE_VERSION = (
    f"{TEMPLATE_WORDING}+styles.{hashlib.sha256(_GUIDES.encode()).hexdigest()[:8]}"
    f"+languages.{hashlib.sha256(_PROMPTS.encode()).hexdigest()[:8]}"
)
MAX_ECHOED_OUTPUT_CHARS = 3000  # of a failed reply, shown back to the model in the repair turn

# Bounds that keep a schema-constrained reply short enough to finish within its token budget.
SCHEMA_TITLE_CHARS = 40
SCHEMA_TEXT_CHARS = 120
SCHEMA_VISUAL_PROMPT_CHARS = 200
SCHEMA_MAX_TOTAL_SECONDS = 600
# A visual prompt is for an English text-to-video model: printable ASCII, less `"` and `\`.
VISUAL_PROMPT_PATTERN = "^[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]{{1,{max_chars}}}$"

CAMERA_NAMES = ", ".join(camera.value for camera in Camera)

# Each language's persona, user template, repair turn and phrases: data/languages/<code>.yaml.
# The fixed rules come first and the request last, so every request in a language starts with
# the same few hundred tokens: the engine's prefix cache prefills them once (deployments/engine/
# prefix_cache.py), and the request sits right before the answer.
SYSTEM_PROMPTS: dict[ScriptLanguage, str] = {
    code: language.prompts.system for code, language in LANGUAGES.items()
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
        {"role": "user", "content": LANGUAGES[language].prompts.repair.format(problems=problems)},
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
        return LANGUAGES[language].prompts.system
    if len(custom) > MAX_SYSTEM_PROMPT_CHARS:
        raise ValueError(
            f"system prompt is {len(custom)} characters, over {MAX_SYSTEM_PROMPT_CHARS}"
        )
    return custom.strip()


def _user_prompt(request: ScriptRequest, language: ScriptLanguage) -> str:
    total = planned_duration(request.duration_s, request.num_scenes)
    prompts = LANGUAGES[language].prompts
    if request.num_scenes:
        scenes = str(request.num_scenes)
    else:
        low, high = scene_count_range(total)
        scenes = prompts.scene_range.format(low=low, high=high)
    return prompts.user.format(
        prompt=request.prompt,
        style=_style_guide(request.style, language),
        duration=total,
        scenes=scenes,
        cameras=CAMERA_NAMES,
        example=json.dumps(_example(request, language), ensure_ascii=False),
        rate=f"{NARRATION_RATES[language]:g}",
        aspect_ratio=request.aspect_ratio,
        look=_look(request, language),
    )


def _look(request: ScriptRequest, language: ScriptLanguage) -> str:
    """The request's visual style and characters, as lines of the prompt (none when absent)."""
    look = ""
    if request.visual_style:
        look += LANGUAGES[language].prompts.visual_style.format(style=request.visual_style)
    if request.characters:
        lines = "\n".join(f"- {c.name}: {c.description}" for c in request.characters)
        look += LANGUAGES[language].prompts.characters.format(lines=lines)
    return look


def _style_guide(style: str | None, language: ScriptLanguage) -> str:
    """The known style's guide (data/styles.yaml), or the client's own words for an unknown one."""
    if not style:
        return LANGUAGES[language].prompts.default_style
    known = find_style(style)
    return known.guide.in_language(language) if known else style.strip()


def _example(request: ScriptRequest, language: ScriptLanguage) -> dict[str, Any]:
    texts = LANGUAGES[language].prompts.example
    scene: dict[str, Any] = {
        "scene_number": 1,
        "description": texts.description,
        "duration": 5,
        "camera": "wide shot",
        "action": texts.action,
        "narration": texts.narration,
        "visual_prompt": "English prompt for a text-to-video model",
    }
    if request.characters:
        scene["characters"] = [request.characters[0].name]
    return {"title": texts.title, "language": language, "total_duration": 5, "scenes": [scene]}
