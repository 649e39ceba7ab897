"""Editing a finished storyboard: change, replace, insert or remove one scene, or rewrite the
whole script under an instruction.

Every edit returns a whole new script, renumbered 1..n with its total recomputed and validated
as a VideoScript, so an edit can never store a storyboard the API would not accept. The model
rewrites one scene seeing the whole script, held to one scene's schema (the same one the
storyboard's schema gives each of its scenes); without the model, the fallback writes another
variant of the scene's beat. Pure Python: no Ray, no web framework.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic import ValidationError

from deployments.storyboard.constants import (
    MAX_DURATION_S,
    MAX_SCENE_SECONDS,
    MAX_SCENES,
    MIN_DURATION_S,
    MIN_SCENE_SECONDS,
    Camera,
    ScriptLanguage,
)
from deployments.storyboard.fallback import fallback_script_json
from deployments.storyboard.languages import LANGUAGES
from deployments.storyboard.look import apply_look
from deployments.storyboard.models import Scene, ScriptRequest, VideoScript
from deployments.storyboard.prompts import CAMERA_NAMES, build_messages, script_json_schema

NUMBER_FIELD = "scene_number"  # a scene's place, never edited: insert or delete instead


class EditError(ValueError):
    """An edit that cannot be made: `field` names what is wrong (`body.duration`)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class SceneLimit(ValueError):
    """An insert or delete the script cannot take (the last scene, more than MAX_SCENES)."""


def editable_fields() -> tuple[str, ...]:
    """The scene fields a client may change: all but the number."""
    return tuple(name for name in Scene.model_fields if name != NUMBER_FIELD)


def edited_scene(
    scene: dict[str, Any], changes: dict[str, Any], field_prefix: str = "body"
) -> dict:
    """`scene` with `changes` applied and validated; EditError naming the first bad field."""
    for name in changes:
        if name == NUMBER_FIELD:
            raise EditError(
                f"{field_prefix}.{name}",
                "a scene's number is its place and cannot be changed; insert or delete scenes",
            )
        if name not in Scene.model_fields:
            raise EditError(
                f"{field_prefix}.{name}",
                f"not a scene field; the fields are {', '.join(editable_fields())}",
            )
    return _valid_scene({**scene, **changes}, field_prefix)


def new_scene(fields: dict[str, Any], field_prefix: str = "body.scene") -> dict[str, Any]:
    """A scene the client wrote whole (its number is given by its place)."""
    if NUMBER_FIELD in fields:
        fields = {k: v for k, v in fields.items() if k != NUMBER_FIELD}
    unknown = [name for name in fields if name not in Scene.model_fields]
    if unknown:
        raise EditError(f"{field_prefix}.{unknown[0]}", "not a scene field")
    return _valid_scene({**fields, NUMBER_FIELD: 1}, field_prefix)


def _valid_scene(fields: dict[str, Any], field_prefix: str) -> dict[str, Any]:
    try:
        return Scene.model_validate(fields).model_dump(mode="json")
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "scene"
        raise EditError(f"{field_prefix}.{where}", first["msg"]) from None


def with_scene(
    script: dict[str, Any], number: int, scene: dict[str, Any], field_prefix: str = "body"
) -> dict[str, Any]:
    """`script` with scene `number` replaced by `scene`; the others as they were."""
    _check_characters(script, scene, field_prefix)
    scenes = list(script["scenes"])
    scenes[number - 1] = scene
    return rebuilt(script, scenes)


def check_room(script: dict[str, Any]) -> None:
    """SceneLimit when `script` cannot take another scene (it has MAX_SCENES)."""
    count = len(script["scenes"])
    if count >= MAX_SCENES:
        raise SceneLimit(f"the script already has {count} scenes, the most it may have")


def with_scene_inserted(
    script: dict[str, Any],
    position: int,
    scene: dict[str, Any],
    field_prefix: str = "body.scene",
) -> dict[str, Any]:
    """`script` with `scene` at `position` (1..n+1); the scenes from there on move one down."""
    scenes = list(script["scenes"])
    check_room(script)
    _check_characters(script, scene, field_prefix)
    scenes.insert(position - 1, scene)
    return rebuilt(script, scenes)


def _check_characters(script: dict[str, Any], scene: dict[str, Any], field_prefix: str) -> None:
    """A scene names only the script's characters (the request's, given once)."""
    known = [character["name"] for character in script.get("characters") or []]
    strangers = [name for name in scene.get("characters") or [] if name not in known]
    if strangers:
        cast = ", ".join(known) if known else "none"
        raise EditError(
            f"{field_prefix}.characters",
            f"{', '.join(strangers)} not among the script's characters ({cast})",
        )


def without_scene(script: dict[str, Any], number: int) -> dict[str, Any]:
    """`script` without scene `number`, the rest renumbered."""
    scenes = list(script["scenes"])
    if len(scenes) <= 1:
        raise SceneLimit("a storyboard keeps at least one scene; the last one cannot be deleted")
    del scenes[number - 1]
    return rebuilt(script, scenes)


def rebuilt(script: dict[str, Any], scenes: list[dict[str, Any]]) -> dict[str, Any]:
    """The script with `scenes` numbered 1..n and the total their durations add up to."""
    numbered = [{**scene, NUMBER_FIELD: number} for number, scene in enumerate(scenes, start=1)]
    total = round(sum(scene["duration"] for scene in numbered), 3)
    try:
        valid = VideoScript.model_validate({**script, "scenes": numbered, "total_duration": total})
    except ValidationError as error:  # a rule of the whole script the scenes alone cannot see
        raise EditError("body", error.errors()[0]["msg"]) from None
    return valid.model_dump(mode="json")


def with_look(scene: dict[str, Any], request: ScriptRequest, language: ScriptLanguage) -> dict:
    """A model-written scene carrying the request's look (its characters' descriptions and the
    visual style in the visual prompt), as every scene of a script does."""
    alone = VideoScript(
        title="scene",
        language=language,
        total_duration=scene["duration"],
        scenes=[Scene.model_validate({**scene, NUMBER_FIELD: 1})],
        characters=list(request.characters),
    )
    [looked] = apply_look(alone, request).scenes
    return {**looked.model_dump(mode="json"), NUMBER_FIELD: scene[NUMBER_FIELD]}


# ---- the model: one scene, or the whole script, rewritten under an instruction ----

# The instructions are data: data/languages/<code>.yaml, `editing` (languages.Editing), written
# in each script language.


def rewrite_scene_messages(
    request: ScriptRequest,
    script: dict[str, Any],
    number: int,
    instruction: str | None,
    system_prompt: str | None = None,
) -> list[dict[str, str]]:
    """Messages asking the model for another version of scene `number`, seeing the script."""
    language: ScriptLanguage = script["language"]
    task = LANGUAGES[language].editing.rewrite_task.format(number=number)
    duration = script["scenes"][number - 1]["duration"]
    return _scene_messages(request, script, task, instruction, duration, system_prompt)


def insert_scene_messages(
    request: ScriptRequest,
    script: dict[str, Any],
    position: int,
    instruction: str | None,
    duration: float,
    system_prompt: str | None = None,
) -> list[dict[str, str]]:
    """Messages asking the model for a new scene at `position`, seeing the script."""
    task = LANGUAGES[script["language"]].editing.insert_task.format(number=position)
    return _scene_messages(request, script, task, instruction, duration, system_prompt)


def _scene_messages(
    request: ScriptRequest,
    script: dict[str, Any],
    task: str,
    instruction: str | None,
    duration: float,
    system_prompt: str | None,
) -> list[dict[str, str]]:
    language: ScriptLanguage = script["language"]
    persona = build_messages(request, system_prompt)[0]
    texts = LANGUAGES[language].editing
    wanted = texts.instruction.format(text=instruction) if instruction else ""
    user = texts.scene.format(
        script=_compact(script),
        task=task,
        instruction=wanted,
        cameras=CAMERA_NAMES,
        duration=f"{duration:g}",
    )
    return [persona, {"role": "user", "content": user}]


def refine_messages(
    request: ScriptRequest,
    script: dict[str, Any],
    instruction: str,
    system_prompt: str | None = None,
) -> list[dict[str, str]]:
    """Messages asking the model to rewrite the whole script under `instruction`."""
    language: ScriptLanguage = script["language"]
    persona = build_messages(request, system_prompt)[0]
    user = LANGUAGES[language].editing.refine.format(
        script=_compact(script), instruction=instruction, cameras=CAMERA_NAMES
    )
    return [persona, {"role": "user", "content": user}]


def scene_json_schema(request: ScriptRequest) -> dict[str, Any]:
    """One scene's schema for constrained decoding: the storyboard schema's scene, without the
    number (the place decides it)."""
    scene = copy.deepcopy(script_json_schema(request)["properties"]["scenes"]["items"])
    scene["properties"].pop(NUMBER_FIELD, None)
    scene["required"] = [name for name in scene["required"] if name != NUMBER_FIELD]
    return scene


def refine_request(request: ScriptRequest, script: dict[str, Any]) -> ScriptRequest:
    """The request a whole rewrite is held to: the script's own total, any scene count."""
    total = int(min(MAX_DURATION_S, max(MIN_DURATION_S, round(script["total_duration"]))))
    return request.model_copy(update={"duration_s": total, "num_scenes": None})


def scene_from_reply(text: str, number: int, duration: float | None) -> dict[str, Any]:
    """The scene in the model's reply, numbered `number` (and lasting `duration` when given);
    ValueError saying why there is none."""
    start, end = text.find("{"), text.rfind("}")
    if start == -1 or end < start:
        raise ValueError("no JSON object in the reply")
    try:
        fields = json.loads(text[start : end + 1])
    except ValueError as error:
        raise ValueError(f"the reply is not JSON ({error})") from None
    if not isinstance(fields, dict):
        raise ValueError("the reply is not a JSON object")
    fields = {name: value for name, value in fields.items() if name in Scene.model_fields}
    fields[NUMBER_FIELD] = number
    if duration is not None:
        fields["duration"] = duration
    try:
        return Scene.model_validate(fields).model_dump(mode="json")
    except ValidationError as error:
        first = error.errors()[0]
        raise ValueError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def _compact(script: dict[str, Any]) -> str:
    return json.dumps(script, ensure_ascii=False, separators=(",", ":"))


# ---- the fallback: another variant of a beat ----


def fallback_scene_variant(
    request: ScriptRequest, script: dict[str, Any], number: int
) -> dict[str, Any]:
    """A different fallback scene for place `number`, lasting as long as the one it replaces:
    the fallback's beat nearest that place in the arc that the script does not show yet."""
    scenes = script["scenes"]
    current = scenes[number - 1]
    place = (number - 1) / max(1, len(scenes) - 1)
    scene = _unused_fallback_scene(request, scenes, place, current)
    return {**scene, NUMBER_FIELD: number, "duration": current["duration"]}


def fallback_new_scene(
    request: ScriptRequest, script: dict[str, Any], position: int, duration: float
) -> dict[str, Any]:
    """A fallback scene for a new place `position`, one the script does not show yet."""
    place = (position - 1) / max(1, len(script["scenes"]))
    scene = _unused_fallback_scene(request, script["scenes"], place, None)
    return {**scene, NUMBER_FIELD: position, "duration": duration}


def typical_duration(script: dict[str, Any]) -> float:
    """A new scene's length: the script's mean scene, to half a second."""
    scenes = script["scenes"]
    mean = sum(scene["duration"] for scene in scenes) / len(scenes)
    return min(MAX_SCENE_SECONDS, max(MIN_SCENE_SECONDS, round(mean * 2) / 2))


def _unused_fallback_scene(
    request: ScriptRequest,
    scenes: list[dict[str, Any]],
    place: float,
    current: dict[str, Any] | None,
) -> dict[str, Any]:
    """The fallback's scenes for this request over every arc length, nearest `place` first:
    the first the script does not show; else the first unlike `current`; else one with
    another camera (never the scene as it was)."""
    shown = {scene["description"] for scene in scenes}
    candidates = sorted(_fallback_scenes(request), key=lambda found: abs(found[0] - place))
    ordered = [scene for _, scene in candidates]
    for scene in ordered:
        if scene["description"] not in shown:
            return scene
    for scene in ordered:
        if current is None or scene["description"] != current["description"]:
            return scene
    scene = ordered[0]
    other = next(camera for camera in Camera if camera.value != scene["camera"])
    return {**scene, "camera": other.value}


def _fallback_scenes(request: ScriptRequest) -> list[tuple[float, dict[str, Any]]]:
    """(place in the arc 0..1, scene) of the fallback's script at every scene count, each
    distinct scene once."""
    found: dict[str, tuple[float, dict[str, Any]]] = {}
    for count in range(1, MAX_SCENES + 1):
        variant = request.model_copy(update={"num_scenes": count, "duration_s": None})
        try:
            scenes = fallback_script_json(variant)["scenes"]
        except ValueError:
            continue
        for index, scene in enumerate(scenes):
            place = index / max(1, len(scenes) - 1)
            found.setdefault(scene["description"], (place, scene))
    return list(found.values())
