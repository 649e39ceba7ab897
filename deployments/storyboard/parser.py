"""Turn whatever a model wrote into a valid VideoScript, or say exactly why it cannot be done.

Syntax is repaired by json_repair (code fences, prose, trailing commas, comments, single or
Chinese quotes, Python literals, truncation, several objects in one reply). Then the structure is
normalized: alternative field names, numbers written as text, free-text camera names, missing
fields, scene numbering, duration bounds and the total.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import json_repair
from pydantic import ValidationError

from deployments.storyboard.constants import (
    DEFAULT_SCENE_SECONDS,
    MAX_SCENE_SECONDS,
    MAX_SCENES,
    MAX_TITLE_CHARS,
    MIN_SCENE_SECONDS,
    Camera,
    ScriptLanguage,
)
from deployments.storyboard.fallback.keywords import extract_terms
from deployments.storyboard.language import (
    cjk_count,
    detect_language,
    east_asian_count,
    resolve_language,
)
from deployments.storyboard.languages import LANGUAGES
from deployments.storyboard.lengths import (
    max_scenes_for,
    min_scenes_for,
    planned_duration,
    scene_length_problem,
    share_duration,
)
from deployments.storyboard.look import apply_look, scene_with_look
from deployments.storyboard.models import Scene, ScriptRequest, VideoScript

TITLE_FROM_TEXT_CHARS = 30


class ScriptParseError(ValueError):
    """The text holds no usable script; `reason` is short enough to feed back to the model."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _keys(*names: str) -> tuple[str, ...]:
    return tuple(_normalize_key(name) for name in names)


def _normalize_key(key: object) -> str:
    return re.sub(r"[\s_\-]+", "", str(key)).lower()


def _aliases(field: str) -> tuple[str, ...]:
    """Every script language's names for `field` (data/languages/<code>.yaml, `aliases`)."""
    return tuple(
        word for language in LANGUAGES.values() for word in getattr(language.aliases, field)
    )


# Accepted spellings of each field, most specific first (the JSON names, then each language's
# words for them); compared after _normalize_key.
SCENES_KEYS = _keys(
    "scenes", "scene_list", "shots", "shot_list", "storyboard", *_aliases("scenes")
)  # fmt: skip
TITLE_KEYS = _keys("title", "video_title", "name", "topic", *_aliases("title"))
LANGUAGE_KEYS = _keys("language", "lang", "语言", "言語", "언어", "idioma", "langue", "sprache")
SCENE_FIELD_KEYS: dict[str, tuple[str, ...]] = {
    "description": _keys(
        "description", "desc", "scene_description", "content", "visual", *_aliases("description")
    ),
    "duration": _keys("duration", "duration_s", "seconds", "length", "time", *_aliases("duration")),
    "camera": _keys(
        "camera",
        "camera_angle",
        "camera_shot",
        "shot_type",
        "shot",
        "camera_movement",
        "angle",
        *_aliases("camera"),
    ),
    "action": _keys("action", "actions", *_aliases("action")),
    "narration": _keys(
        "narration", "voiceover", "voice_over", "dialogue", "text", *_aliases("narration")
    ),
    "visual_prompt": _keys(
        "visual_prompt",
        "image_prompt",
        "video_prompt",
        "t2v_prompt",
        "prompt",
        *_aliases("visual_prompt"),
    ),
}
CHARACTERS_KEYS = _keys("characters", "character", "cast", *_aliases("characters"))
LANGUAGE_NAMES: dict[str, ScriptLanguage] = {
    _normalize_key(name): code for code, language in LANGUAGES.items()
    for name in (code, *language.aliases.names)
}  # fmt: skip
# Words that say a number is minutes or seconds, in every script language ("1分30秒", "2 min",
# "1분 30초", "90 segundos").
MINUTE_WORDS = tuple(word for language in LANGUAGES.values() for word in language.aliases.minutes)
SECOND_WORDS = tuple(word for language in LANGUAGES.values() for word in language.aliases.seconds)

# Free-text shot names → Camera, checked in order so specific phrases win ("大特写" before "特写").
CAMERA_PHRASES: tuple[tuple[str, Camera], ...] = (
    ("extreme close", Camera.EXTREME_CLOSE_UP), ("大特写", Camera.EXTREME_CLOSE_UP),
    ("macro", Camera.EXTREME_CLOSE_UP), ("微距", Camera.EXTREME_CLOSE_UP),
    ("time lapse", Camera.TIME_LAPSE), ("timelapse", Camera.TIME_LAPSE),
    ("延时", Camera.TIME_LAPSE), ("缩时", Camera.TIME_LAPSE),
    ("aerial", Camera.AERIAL_VIEW), ("drone", Camera.AERIAL_VIEW), ("bird", Camera.AERIAL_VIEW),
    ("航拍", Camera.AERIAL_VIEW), ("鸟瞰", Camera.AERIAL_VIEW), ("无人机", Camera.AERIAL_VIEW),
    ("俯瞰", Camera.AERIAL_VIEW),
    ("point of view", Camera.POINT_OF_VIEW), ("pov", Camera.POINT_OF_VIEW),
    ("first person", Camera.POINT_OF_VIEW), ("第一人称", Camera.POINT_OF_VIEW),
    ("主观", Camera.POINT_OF_VIEW),
    ("tracking", Camera.TRACKING_SHOT), ("follow", Camera.TRACKING_SHOT),
    ("dolly", Camera.TRACKING_SHOT), ("steadicam", Camera.TRACKING_SHOT),
    ("跟拍", Camera.TRACKING_SHOT), ("跟随", Camera.TRACKING_SHOT),
    ("跟镜头", Camera.TRACKING_SHOT), ("移动", Camera.TRACKING_SHOT),
    ("推镜头", Camera.TRACKING_SHOT), ("拉镜头", Camera.TRACKING_SHOT),
    ("panoram", Camera.WIDE_SHOT), ("pan", Camera.PANNING_SHOT), ("摇", Camera.PANNING_SHOT),
    ("平移", Camera.PANNING_SHOT), ("横移", Camera.PANNING_SHOT),
    ("low angle", Camera.LOW_ANGLE), ("worm", Camera.LOW_ANGLE), ("仰", Camera.LOW_ANGLE),
    ("high angle", Camera.HIGH_ANGLE), ("top down", Camera.HIGH_ANGLE),
    ("overhead", Camera.HIGH_ANGLE), ("俯", Camera.HIGH_ANGLE), ("顶拍", Camera.HIGH_ANGLE),
    ("中近景", Camera.MEDIUM_SHOT),
    ("close", Camera.CLOSE_UP), ("特写", Camera.CLOSE_UP), ("近景", Camera.CLOSE_UP),
    ("medium", Camera.MEDIUM_SHOT), ("mid shot", Camera.MEDIUM_SHOT), ("中景", Camera.MEDIUM_SHOT),
    ("半身", Camera.MEDIUM_SHOT), ("waist", Camera.MEDIUM_SHOT),
    ("wide", Camera.WIDE_SHOT), ("long shot", Camera.WIDE_SHOT), ("establishing", Camera.WIDE_SHOT),
    ("full shot", Camera.WIDE_SHOT), ("远景", Camera.WIDE_SHOT), ("全景", Camera.WIDE_SHOT),
)  # fmt: skip
# Shots given to scenes whose camera is missing or unrecognizable, varied like an editor would.
CAMERA_ROTATION = (
    Camera.WIDE_SHOT, Camera.MEDIUM_SHOT, Camera.CLOSE_UP, Camera.TRACKING_SHOT, Camera.AERIAL_VIEW,
)  # fmt: skip

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_MINUTES = re.compile("|".join([*map(re.escape, MINUTE_WORDS), ":", "："]), re.IGNORECASE)
_SECONDS = re.compile(
    "|".join(re.escape(w) for w in SECOND_WORDS if not w.isascii() or len(w) > 1), re.IGNORECASE
)
_TOKEN_SPLIT = re.compile(r"[\s_\-]+")


def parse_script(text: str, request: ScriptRequest | None = None) -> VideoScript:
    """The best script in `text`; raises ScriptParseError when there is none.

    With `request`, the scenes' durations add up to its total (a reply whose scene count cannot
    carry that total has no usable script), the language follows it, and the script carries its
    look (storyboard.look: visual style, characters, aspect ratio).
    """
    if not isinstance(text, str) or not text.strip():
        raise ScriptParseError("the output is empty")
    reasons: list[str] = []
    best: VideoScript | None = None
    for raw_scenes, container in _script_candidates(_repair(text)):
        try:
            script = _normalize(raw_scenes, container, request)
        except ScriptParseError as error:
            reasons.append(error.reason)
            continue
        if best is None or len(script.scenes) >= len(best.scenes):
            best = script
    if best is None:
        raise ScriptParseError(reasons[0] if reasons else "no JSON object with scenes found")
    return best if request is None else apply_look(best, request)


def camera_from_text(value: object) -> Camera | None:
    """Camera for a free-text shot name ("Close-Up", "航拍", "slow pan"), None when unknown."""
    text = " ".join(_TOKEN_SPLIT.split(str(value).lower())).strip()
    try:
        return Camera(text)
    except ValueError:
        pass
    return next((camera for phrase, camera in CAMERA_PHRASES if phrase in text), None)


def seconds_from_value(value: object) -> float | None:
    """Seconds from 5, "5", "5.0", "5s", "5秒", "约5秒", "1分30秒" or "0:05"; None when absent."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    numbers = [float(n) for n in _NUMBER.findall(value)]
    if not numbers:
        return None
    if len(numbers) >= 2 and _MINUTES.search(value):
        return numbers[0] * 60 + numbers[1]
    if _MINUTES.search(value) and not _SECONDS.search(value):
        return numbers[0] * 60
    return numbers[0]


# Finding the script ------------------------------------------------------------------------------
def _repair(text: str) -> Any:
    try:
        return json_repair.loads(text)
    except Exception as error:  # a repair library may fail in ways of its own on arbitrary text
        raise ScriptParseError(
            f"the output is not repairable JSON ({type(error).__name__})"
        ) from None


def _script_candidates(value: Any) -> list[tuple[list[Any], dict[str, Any]]]:
    """Every (scenes, enclosing object) pair in the parsed value, in reading order."""
    found: list[tuple[list[Any], dict[str, Any]]] = []
    _collect_candidates(value, found, depth=0)
    return found


def _collect_candidates(value: Any, found: list, depth: int) -> None:
    if depth > 8:
        return
    if isinstance(value, dict):
        scenes = _scenes_in(value)
        if scenes is not None:
            found.append((scenes, value))
            return
        if _looks_like_scene(value):
            found.append(([value], {}))
            return
        for child in value.values():
            _collect_candidates(child, found, depth + 1)
    elif isinstance(value, str) and value.lstrip().startswith(("{", "[")):
        _collect_candidates(_repair(value), found, depth + 1)  # JSON encoded as a string
    elif isinstance(value, list):
        if value and all(_looks_like_scene(item) for item in value):
            found.append((value, {}))
            return
        for child in value:
            _collect_candidates(child, found, depth + 1)


def _scenes_in(container: dict[str, Any]) -> list[Any] | None:
    """The container's scene list; a dict of scenes ({"1": {...}, "2": {...}}) counts too."""
    keyed = {_normalize_key(key): value for key, value in container.items()}
    for key in SCENES_KEYS:
        value = keyed.get(key)
        if isinstance(value, list):
            return value
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            return list(value.values())
    return None


def _looks_like_scene(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    keys = {_normalize_key(key) for key in value}
    text_keys = (
        SCENE_FIELD_KEYS["description"] + SCENE_FIELD_KEYS["narration"] + SCENE_FIELD_KEYS["action"]
    )
    return any(key in keys for key in text_keys)


# Normalizing it ----------------------------------------------------------------------------------
def _normalize(
    raw_scenes: list[Any], container: dict[str, Any], request: ScriptRequest | None
) -> VideoScript:
    fields = [_scene_fields(raw) for raw in raw_scenes]
    fields = [f for f in fields if f["description"]][:MAX_SCENES]
    if not fields:
        raise ScriptParseError("the scenes list has no scene with a description")
    if request is not None and request.num_scenes and len(fields) != request.num_scenes:
        raise ScriptParseError(
            f"the request asks for exactly {request.num_scenes} scenes, the reply has "
            f"{len(fields)}: write {request.num_scenes} scenes"
        )
    language = _language(container, fields, request)
    durations = _durations(fields, request)
    scenes: list[Scene] = []
    previous_camera: Camera | None = None
    for number, (scene, duration) in enumerate(zip(fields, durations, strict=True), start=1):
        scenes.append(_scene(scene, number, duration, previous_camera, request))
        previous_camera = scenes[-1].camera
    title = _text(_first_value(container, TITLE_KEYS)) or _title_from(request, fields)
    try:
        return VideoScript(
            title=title[:MAX_TITLE_CHARS],
            language=language,
            total_duration=round(sum(durations), 2),
            scenes=scenes,
            characters=request.characters if request is not None else [],
        )
    except ValidationError as error:
        raise ScriptParseError(_first_problem(error)) from None


def _scene(
    fields: dict[str, Any],
    number: int,
    duration: float,
    previous_camera: Camera | None,
    request: ScriptRequest | None,
) -> Scene:
    camera = camera_from_text(fields["camera"]) if fields["camera"] else None
    camera = camera or _next_camera(previous_camera, number)
    try:
        return Scene(
            scene_number=number,
            description=fields["description"],
            duration=duration,
            camera=camera,
            action=fields["action"] or fields["description"],
            narration=fields["narration"],
            visual_prompt=_english_visual_prompt(fields, camera, request),
            characters=_known_names(fields["characters"], request),
        )
    except ValidationError as error:
        raise ScriptParseError(f"scene {number}: {_first_problem(error)}") from None


class DraftScenes:
    """Scenes of a reply still being generated, each normalized as `parse_script` will
    normalize it, as far as one scene allows: numbered by position, camera, action, English
    visual prompt, characters and the request's look as in the final script. Only `duration`
    may differ: the model's value (clamped to the scene length range) until the whole script
    is there and the durations are shared out to add up to the total."""

    def __init__(self, request: ScriptRequest | None):
        self.request = request
        self.scenes: list[Scene] = []

    def add(self, raw: Any) -> Scene | None:
        """The next scene from one raw scene object; None when it holds no usable scene (the
        final parse skips it too, or fails)."""
        fields = _scene_fields(raw)
        if not fields["description"] or len(self.scenes) >= MAX_SCENES:
            return None
        given = fields["duration"]
        duration = round(_clamp_seconds(DEFAULT_SCENE_SECONDS if given is None else given), 1)
        previous = self.scenes[-1].camera if self.scenes else None
        try:
            scene = _scene(fields, len(self.scenes) + 1, duration, previous, self.request)
        except ScriptParseError:
            return None
        if self.request is not None:
            scene = scene_with_look(scene, self.request)
        self.scenes.append(scene)
        return scene


def _scene_fields(raw: Any) -> dict[str, Any]:
    """Canonical field name → value for one raw scene; a bare string is its description."""
    if isinstance(raw, str):
        return {
            "description": raw.strip(), "duration": None, "camera": None, "action": "",
            "narration": "", "visual_prompt": "", "characters": None,
        }  # fmt: skip
    if not isinstance(raw, dict):
        return {"description": ""}
    values = {
        name: _first_value(raw, keys, numeric=name == "duration")
        for name, keys in SCENE_FIELD_KEYS.items()
    }
    fields: dict[str, Any] = {name: _text(value) for name, value in values.items()}
    fields["duration"] = seconds_from_value(values["duration"])
    fields["characters"] = _first_value(raw, CHARACTERS_KEYS)
    fields["camera"] = values["camera"]
    fields["description"] = (
        fields["description"] or fields["action"] or fields["narration"] or fields["visual_prompt"]
    )
    return fields


def _first_value(container: dict[str, Any], keys: tuple[str, ...], numeric: bool = False) -> Any:
    """The value of the first alias present with something usable in it."""
    keyed = {_normalize_key(key): value for key, value in container.items()}
    for key in keys:
        value = keyed.get(key)
        usable = seconds_from_value(value) is not None if numeric else _text(value)
        if usable:
            return value
    return None


def _text(value: Any) -> str:
    """Text from a string or a list of strings; numbers and other shapes carry no usable text."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return " ".join(part for part in (_text(item) for item in value) if part)
    return ""


def _durations(fields: list[dict[str, Any]], request: ScriptRequest | None) -> list[float]:
    """Given durations clamped to the scene length range; missing ones share what the total
    leaves (else DEFAULT_SCENE_SECONDS each). With a request, all are then scaled to add up to
    its total (the request's `duration_s`, else the default the prompt asked for), shared as the
    fallback shares it: the two paths never answer one request with different totals."""
    given = [f["duration"] for f in fields]
    if request is None:
        return [round(_clamp_seconds(DEFAULT_SCENE_SECONDS if d is None else d), 1) for d in given]
    total = planned_duration(request.duration_s, request.num_scenes)
    if scene_length_problem(total, len(given)) is not None:
        raise ScriptParseError(
            f"{len(given)} scenes cannot add up to the total length of {total} s (each scene "
            f"lasts {MIN_SCENE_SECONDS}–{MAX_SCENE_SECONDS} s): write "
            f"{min_scenes_for(total)} to {max_scenes_for(total)} scenes"
        )
    known = [_clamp_seconds(d) for d in given if d is not None]
    missing = len(given) - len(known)
    share = DEFAULT_SCENE_SECONDS
    if missing and total > sum(known):
        share = (total - sum(known)) / missing
    return share_duration(total, [_clamp_seconds(share if d is None else d) for d in given])


def _known_names(value: Any, request: ScriptRequest | None) -> list[str]:
    """The request's character names the model listed for a scene (as a list or a text), spelt
    as the request spells them; names it made up are dropped."""
    if request is None or not request.characters:
        return []
    listed = _text(value).casefold()
    return [c.name for c in request.characters if c.name.casefold() in listed]


def _clamp_seconds(seconds: float) -> float:
    if seconds != seconds:  # NaN
        return DEFAULT_SCENE_SECONDS
    return min(MAX_SCENE_SECONDS, max(MIN_SCENE_SECONDS, seconds))


def _language(
    container: dict[str, Any], fields: list[dict[str, Any]], request: ScriptRequest | None
) -> ScriptLanguage:
    named = _text(_first_value(container, LANGUAGE_KEYS))
    language = LANGUAGE_NAMES.get(_normalize_key(named))
    if language:
        return language  # type: ignore[return-value]
    if request is not None:
        return resolve_language(request)
    return detect_language(" ".join(f["narration"] or f["description"] for f in fields))


def _next_camera(previous: Camera | None, number: int) -> Camera:
    rotation = CAMERA_ROTATION[(number - 1) % len(CAMERA_ROTATION) :] + CAMERA_ROTATION
    return next(camera for camera in rotation if camera != previous)


def _english_visual_prompt(
    scene: dict[str, Any], camera: Camera, request: ScriptRequest | None
) -> str:
    """The model's visual prompt when it is English; else one built from the scene's words."""
    given = scene["visual_prompt"]
    if given and not east_asian_count(given):
        return given
    source = given or scene["description"]
    if east_asian_count(source):
        subject = " ".join(extract_terms(source).english_words[:6]) or "a storyboard scene"
    else:
        subject = source
    style = (
        request.style if request is not None and request.style and request.style.isascii() else ""
    )
    return ", ".join(part for part in (subject, camera.value, style, "cinematic, detailed") if part)


def _title_from(request: ScriptRequest | None, fields: list[dict[str, Any]]) -> str:
    if request is not None:
        topic = extract_terms(request.prompt).topic
        if topic:
            return topic
        return request.prompt[:TITLE_FROM_TEXT_CHARS]
    description = fields[0]["description"]
    if cjk_count(description):
        return description[:TITLE_FROM_TEXT_CHARS]
    return textwrap.shorten(description, TITLE_FROM_TEXT_CHARS, placeholder="") or description


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    return f"{where}: {problem['msg']}" if where else problem["msg"]
