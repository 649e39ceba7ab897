"""The storyboard as a Markdown document people read, print or paste into a wiki."""

from __future__ import annotations

import re

from deployments.storyboard.constants import ScriptLanguage
from deployments.storyboard.exports.shotlist import seconds_text
from deployments.storyboard.exports.timing import characters_of, scene_spans
from deployments.storyboard.languages import LANGUAGES
from deployments.storyboard.models import VideoScript

# Each language's headings: data/languages/<code>.yaml, `labels`.
LABELS: dict[ScriptLanguage, dict[str, str]] = {
    code: language.labels.model_dump() for code, language in LANGUAGES.items()
}
# Characters Markdown would read as markup (or HTML) if a script's text held them.
_MARKUP = re.compile(r"([\\`*_\[\]<>#|~])")


def to_markdown(script: VideoScript) -> str:
    labels = LABELS[script.language]
    summary = labels["summary"].format(
        count=len(script.scenes), total=seconds_text(script.total_duration)
    )
    parts = [f"# {_text(script.title)}", summary, *_look(script, labels)]
    for span in scene_spans(script):
        scene = span.scene
        heading = labels["scene"].format(number=scene.scene_number)
        clock = f"{clock_text(span.start)}–{clock_text(span.end)}"
        rows = [
            f"## {heading} · {clock} · {scene.camera.value}",
            f"**{labels['description']}**: {_text(scene.description)}  ",
            f"**{labels['action']}**: {_text(scene.action)}  ",
        ]
        if names := characters_of(scene):
            rows.append(f"**{labels['characters']}**: {_text(', '.join(names))}  ")
        if scene.narration.strip():
            rows.append(f"**{labels['narration']}**: {_text(scene.narration)}  ")
        rows.append(f"**{labels['visual_prompt']}**: {_text(scene.visual_prompt)}")
        parts.append("\n".join(rows))
    return "\n\n".join(parts) + "\n"


def _look(script: VideoScript, labels: dict[str, str]) -> list[str]:
    """The look kept across scenes and the cast, where the script carries them."""
    rows = [
        f"**{labels[field]}**: {_text(str(value))}  "
        for field in ("visual_style", "aspect_ratio")
        if (value := getattr(script, field, None))
    ]
    cast = [
        f"- **{_text(character.name)}**: {_text(character.description)}"
        for character in getattr(script, "characters", None) or []
    ]
    if cast:
        rows.append(f"**{labels['characters']}**:\n\n" + "\n".join(cast))
    return ["\n".join(rows)] if rows else []


def clock_text(seconds: float) -> str:
    """m:ss with the fraction kept when there is one: 0:04.5, 1:12."""
    minutes, rest = divmod(round(seconds, 3), 60)
    whole = f"{int(minutes)}:{int(rest):02d}"
    fraction = seconds_text(rest % 1)
    return whole if fraction == "0" else whole + fraction[1:]


def _text(text: str) -> str:
    """One line of the script's text, its markup characters escaped."""
    return _MARKUP.sub(r"\\\1", " ".join(text.split()))
