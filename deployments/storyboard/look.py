"""The look a request gives once — its visual style, its characters, its frame — carried into
every scene, so a text-to-video model sees the same style and the same faces in each shot.

One function for both paths: the parser applies it to the model's script, the fallback to its
own, so each guarantees that every visual prompt carries the style and each present
character's description. Descriptions are kept as given (not translated).
"""

from __future__ import annotations

from collections.abc import Iterable

from deployments.storyboard.models import Character, Scene, ScriptRequest, VideoScript


def apply_look(script: VideoScript, request: ScriptRequest) -> VideoScript:
    """`script` echoing the request's aspect ratio, visual style and characters, each scene
    naming the characters in it (those it listed or names in its text) and its visual prompt
    carrying them and the style. Applying it twice changes nothing more."""
    return VideoScript(
        title=script.title,
        language=script.language,
        total_duration=script.total_duration,
        scenes=[scene_with_look(scene, request) for scene in script.scenes],
        aspect_ratio=request.aspect_ratio,
        visual_style=request.visual_style,
        characters=list(request.characters),
    )


def scene_with_look(scene: Scene, request: ScriptRequest) -> Scene:
    """One scene as `apply_look` leaves it: naming the characters in it, its visual prompt
    carrying them and the request's visual style."""
    present = characters_in(scene, request.characters)
    return scene.model_copy(
        update={
            "characters": [character.name for character in present],
            "visual_prompt": visual_prompt_with_look(
                scene.visual_prompt, present, request.visual_style
            ),
        }
    )


def characters_in(scene: Scene, characters: Iterable[Character]) -> list[Character]:
    """The characters the scene lists or names in its lines (names compared case-insensitively),
    in the request's order."""
    listed = {name.strip().casefold() for name in scene.characters}
    text = " ".join((scene.description, scene.action, scene.narration)).casefold()
    return [
        character
        for character in characters
        if character.name.casefold() in listed or character.name.casefold() in text
    ]


def visual_prompt_with_look(
    prompt: str, characters: Iterable[Character], visual_style: str | None
) -> str:
    """`prompt`, then "name (description)" of each character, then the visual style: each part
    added only when the prompt does not hold it already."""
    parts = [prompt.strip().rstrip(",")]
    additions = [f"{character.name} ({character.description})" for character in characters]
    if visual_style:
        additions.append(visual_style)
    for addition in additions:
        if addition.casefold() not in prompt.casefold():
            parts.append(addition)
    return ", ".join(part for part in parts if part)
