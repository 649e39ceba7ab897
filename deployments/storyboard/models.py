"""The storyboard's data: what a client asks for (ScriptRequest) and what it gets (VideoScript).

Data only, bounded by storyboard.constants; the HTTP contract (protocol.py) carries
these models as they are.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from deployments.storyboard.constants import (
    DEFAULT_ASPECT_RATIO,
    MAX_CHARACTER_DESCRIPTION_CHARS,
    MAX_CHARACTER_NAME_CHARS,
    MAX_CHARACTERS,
    MAX_DURATION_S,
    MAX_MODEL_ID_CHARS,
    MAX_PROMPT_CHARS,
    MAX_SCENE_SECONDS,
    MAX_SCENES,
    MAX_STYLE_CHARS,
    MAX_SYSTEM_PROMPT_CHARS,
    MAX_TITLE_CHARS,
    MAX_VISUAL_STYLE_CHARS,
    MIN_DURATION_S,
    MIN_SCENES,
    MODEL_ID_PATTERN,
    AspectRatio,
    Camera,
    RequestLanguage,
    ScriptLanguage,
)
from deployments.storyboard.language import visible_request_text
from deployments.storyboard.lengths import scene_length_problem


def _visible(text: str | None) -> str | None:
    """Request text as kept (storyboard.language); a 422 of its own kind when nothing shows."""
    if text is None:
        return None
    try:
        return visible_request_text(text)
    except ValueError as error:
        raise PydanticCustomError("no_visible_text", str(error)) from None


class Character(BaseModel):
    """Someone who appears in the video, described once so every scene shows them alike."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_CHARACTER_NAME_CHARS, description="e.g. Mia.")
    description: str = Field(
        min_length=1,
        max_length=MAX_CHARACTER_DESCRIPTION_CHARS,
        description="Their look, for the text-to-video model, e.g. a girl with a yellow raincoat.",
    )

    @field_validator("name", "description")
    @classmethod
    def _text_is_visible(cls, text: str) -> str | None:
        return _visible(text)


class Scene(BaseModel):
    scene_number: int = Field(ge=1, le=MAX_SCENES)
    description: str = Field(min_length=1, description="What the viewer sees.")
    duration: float = Field(gt=0, le=MAX_SCENE_SECONDS, description="Seconds.")
    camera: Camera
    action: str = Field(min_length=1, description="What moves or happens in the shot.")
    narration: str = Field(description="Voice-over line, in the script's language.")
    visual_prompt: str = Field(min_length=1, description="English prompt for text-to-video.")
    characters: list[str] = Field(
        default_factory=list, description="Names of the request's characters in this scene."
    )


class VideoScript(BaseModel):
    """A storyboard: scenes numbered 1..n whose durations add up to `total_duration`."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "title": "森林探险",
                "language": "zh",
                "total_duration": 12.0,
                "aspect_ratio": "16:9",
                "visual_style": "watercolor illustration, soft pastel palette",
                "characters": [{"name": "小林", "description": "a young hiker in a red jacket"}],
                "scenes": [
                    {
                        "scene_number": 1,
                        "description": "清晨的森林入口，薄雾笼罩着高大的树木",
                        "duration": 6.0,
                        "camera": "wide shot",
                        "action": "探险者背着背包走进森林",
                        "narration": "探险，从第一步开始。",
                        "visual_prompt": "misty forest entrance at dawn, hiker with backpack, "
                        "cinematic wide shot, soft golden light, 小林 (a young hiker in a red "
                        "jacket), watercolor illustration, soft pastel palette",
                        "characters": ["小林"],
                    },
                    {
                        "scene_number": 2,
                        "description": "探险者在溪流边发现一只小鹿",
                        "duration": 6.0,
                        "camera": "close up",
                        "action": "小鹿抬头，与探险者对视",
                        "narration": "森林深处，总有相遇。",
                        "visual_prompt": "young deer by a forest stream looking at camera, "
                        "close up, shallow depth of field, watercolor illustration, soft pastel "
                        "palette",
                        "characters": [],
                    },
                ],
            }
        }
    )

    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    language: ScriptLanguage
    total_duration: float = Field(gt=0)
    scenes: list[Scene] = Field(min_length=MIN_SCENES, max_length=MAX_SCENES)
    # Echoed from the request; scripts stored before these fields read with the defaults.
    aspect_ratio: AspectRatio = DEFAULT_ASPECT_RATIO
    visual_style: str | None = None
    characters: list[Character] = Field(default_factory=list)

    @model_validator(mode="after")
    def _scenes_are_consistent(self) -> VideoScript:
        names = {character.name for character in self.characters}
        for scene in self.scenes:
            strangers = [name for name in scene.characters if name not in names]
            if strangers:
                raise ValueError(
                    f"scene {scene.scene_number} names characters the script does not have: "
                    f"{', '.join(strangers)}"
                )
        numbers = [scene.scene_number for scene in self.scenes]
        if numbers != list(range(1, len(self.scenes) + 1)):
            raise ValueError(f"scene_number must run 1..{len(self.scenes)}, got {numbers}")
        total = sum(scene.duration for scene in self.scenes)
        if abs(total - self.total_duration) > 0.01:
            raise ValueError(
                f"total_duration {self.total_duration} != sum of scene durations {total}"
            )
        return self


class ScriptRequest(BaseModel):
    """What a client asks for: the input of the prompts, the parser and the fallback."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "prompt": "制作一段关于森林探险的短视频",
                "language": "auto",
                "style": "cinematic",
                "duration_s": 30,
                "num_scenes": 5,
                "characters": [
                    {"name": "小林", "description": "a young hiker in a red jacket, short hair"}
                ],
                "visual_style": "watercolor illustration, soft pastel palette",
                "aspect_ratio": "16:9",
            }
        },
    )

    prompt: str = Field(
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        description=f"What the video is about, 1–{MAX_PROMPT_CHARS} characters.",
    )
    language: RequestLanguage = Field(
        "auto", description="Script language; auto detects it from the prompt."
    )
    style: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_STYLE_CHARS,
        description="e.g. cinematic, documentary, vlog.",
    )
    duration_s: int | None = Field(
        None, ge=MIN_DURATION_S, le=MAX_DURATION_S, description="Target total length, seconds."
    )
    num_scenes: int | None = Field(None, ge=MIN_SCENES, le=MAX_SCENES, description="Scene count.")
    system_prompt: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_SYSTEM_PROMPT_CHARS,
        description="Custom persona for the model (the output format rules always apply).",
    )
    characters: list[Character] = Field(
        default_factory=list,
        max_length=MAX_CHARACTERS,
        description=f"Up to {MAX_CHARACTERS} people in the video, names unique; the first is "
        "the protagonist. Each scene's visual prompt carries the description of those in it.",
    )
    visual_style: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_VISUAL_STYLE_CHARS,
        description="The look of every shot, added to each visual prompt, e.g. watercolor "
        "illustration, soft pastel palette.",
    )
    aspect_ratio: AspectRatio = Field(DEFAULT_ASPECT_RATIO, description="Frame shape.")
    model: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_MODEL_ID_CHARS,
        pattern=MODEL_ID_PATTERN,
        description="Id of the served model that writes the script (GET /v1/models lists "
        "them); none = the deployment's default model. Stored with the task: an adopted task, "
        "its scene edits and its refinements use the same model.",
    )

    @field_validator("prompt", "style", "system_prompt", "visual_style")
    @classmethod
    def _text_is_visible(cls, text: str | None) -> str | None:
        return _visible(text)

    @field_validator("characters")
    @classmethod
    def _names_are_unique(cls, characters: list[Character]) -> list[Character]:
        names = [character.name for character in characters]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise PydanticCustomError(
                "duplicate_character",
                "character names must be unique; repeated: {names}",
                {"names": ", ".join(repeated)},
            )
        return characters

    @model_validator(mode="after")
    def _scenes_can_carry_the_duration(self) -> ScriptRequest:
        # One error per field, so the 422 names both body.duration_s and body.num_scenes.
        if self.duration_s is None or self.num_scenes is None:
            return self
        problem = scene_length_problem(self.duration_s, self.num_scenes)
        if problem is None:
            return self
        raise ValidationError.from_exception_data(
            type(self).__name__,
            [
                InitErrorDetails(
                    type=PydanticCustomError("scene_length", problem),
                    loc=(field,),
                    input=getattr(self, field),
                )
                for field in ("duration_s", "num_scenes")
            ],
        )
