"""Build a real storyboard without a model: genre arc × style × the prompt's own words.

Deterministic: the same request always gets the same script, so the fallback is testable and
cache-friendly. Scene count and total duration follow the request; each scene is a distinct beat.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from deployments.storyboard.constants import (
    DEFAULT_DURATION_S,
    DEFAULT_SCENE_RANGE,
    MAX_SCENE_SECONDS,
    MAX_TITLE_CHARS,
    SECONDS_PER_SCENE,
    Camera,
    ScriptLanguage,
)
from deployments.storyboard.fallback.keywords import extract_terms
from deployments.storyboard.fallback.library import (
    LIBRARY,
    VARIATIONS,
    Beat,
    Genre,
    GenreLibrary,
)
from deployments.storyboard.language import cjk_count, resolve_language
from deployments.storyboard.models import Scene, ScriptRequest, VideoScript
from deployments.storyboard.styles import STYLES, Style, find_style

ROLE_WEIGHTS = {"opening": 0.8, "development": 1.0, "climax": 1.3, "ending": 0.9}
RECENT_CAMERAS = 2  # a shot type does not come back within this many scenes
_WORD = re.compile(r"[a-z]+")
_STYLE_WORDS = re.compile(r"[a-z][a-z0-9 '-]*")  # an unknown style that can go into a visual prompt


@dataclass(frozen=True)
class PlannedShot:
    beat: Beat
    role: str
    variation: int  # 0 = the beat as written; k > 0 = VARIATIONS[k - 1] added


def fallback_script_json(request: ScriptRequest) -> dict:
    """The fallback script as JSON-ready data, the form it crosses Serve calls and SQLite in."""
    return build_fallback_script(request).model_dump(mode="json")


def warm_up() -> None:
    """Write one script now: jieba builds its dictionary on first use (~0.7 s), which a replica
    should pay when it starts, not in its first request."""
    build_fallback_script(ScriptRequest(prompt="森林探险短视频"))


def build_fallback_script(request: ScriptRequest) -> VideoScript:
    """A storyboard for `request` built from templates: never fails, never repeats a scene."""
    language = resolve_language(request)
    terms = extract_terms(request.prompt)
    genre = choose_genre(request.prompt)
    style = choose_style(request.style, request.prompt, genre)
    total = request.duration_s or DEFAULT_DURATION_S
    count = request.num_scenes or default_scene_count(total)
    shots = plan_arc(genre, count)
    durations = split_duration(total, [ROLE_WEIGHTS[shot.role] for shot in shots])

    topic = terms.topic_in(language, genre.topic_zh if language == "zh" else genre.subject_en)
    details = terms.details_in(language) or [topic]
    subject = " ".join(terms.english_words[:4]) or genre.subject_en
    writer = _SceneWriter(language, topic, subject, style)
    scenes = []
    cameras: list[Camera] = []
    for number, (shot, duration) in enumerate(zip(shots, durations, strict=True), start=1):
        detail = details[(number - 1) % len(details)]
        cameras.append(pick_camera(shot, style, cameras))
        scenes.append(writer.scene(number, shot, detail, cameras[-1], duration))
    title = (genre.title.zh if language == "zh" else genre.title.en).format(topic=topic)
    if language == "en":
        title = title[:1].upper() + title[1:]
    return VideoScript(
        title=title[:MAX_TITLE_CHARS],
        language=language,
        total_duration=sum(durations),
        scenes=scenes,
    )


def choose_genre(prompt: str, library: GenreLibrary = LIBRARY) -> Genre:
    """The genre whose cue words the prompt mentions most (on a tie, the one of lower priority);
    the general one when none."""
    lowered = prompt.lower()
    tokens = _WORD.findall(lowered)
    best, best_hits = library.general, 0
    for genre in library.genres:
        hits = sum(_mentions(cue, lowered, tokens) for cue in genre.cues)
        if hits > best_hits:
            best, best_hits = genre, hits
    return best


def choose_style(requested: str | None, prompt: str, genre: Genre) -> Style:
    """The requested style (by name or alias), else one the prompt names, else the genre's.

    An unknown English style is kept as words in the visual prompt ("watercolor style").
    """
    if requested:
        known = find_style(requested)
        if known:
            return known
        name = requested.strip().lower()
        if _STYLE_WORDS.fullmatch(name):
            base = STYLES[genre.default_style]
            return base.model_copy(
                update={"name": name, "aliases": (), "visual": f"{name} style, {base.visual}"}
            )
    return _style_in_prompt(prompt) or STYLES[genre.default_style]


def _style_in_prompt(prompt: str) -> Style | None:
    lowered = prompt.lower()
    tokens = _WORD.findall(lowered)
    for style in STYLES.values():
        if any(_mentions_alias(alias, lowered, tokens) for alias in style.names):
            return style
    return None


def _mentions(cue: str, lowered: str, tokens: list[str]) -> bool:
    """Chinese cues match as substrings; English ones as words, long stems as prefixes."""
    if cjk_count(cue):
        return cue in lowered
    if len(cue) >= 4:
        return any(token.startswith(cue) for token in tokens)
    return any(token in (cue, cue + "s", cue + "es") for token in tokens)


def _mentions_alias(alias: str, lowered: str, tokens: list[str]) -> bool:
    return alias in lowered if cjk_count(alias) else alias in tokens


def default_scene_count(total_seconds: int) -> int:
    """About one scene per SECONDS_PER_SCENE, within DEFAULT_SCENE_RANGE."""
    low, high = DEFAULT_SCENE_RANGE
    return max(low, min(high, round(total_seconds / SECONDS_PER_SCENE)))


def plan_arc(genre: Genre, count: int) -> list[PlannedShot]:
    """Opening, development beats, climax, ending; short scripts keep the strongest beats."""
    if count == 1:
        return [PlannedShot(genre.climax, "climax", 0)]
    if count == 2:
        return [PlannedShot(genre.opening, "opening", 0), PlannedShot(genre.ending, "ending", 0)]
    beats = genre.development
    development = [
        PlannedShot(beats[i % len(beats)], "development", i // len(beats)) for i in range(count - 3)
    ]
    return [
        PlannedShot(genre.opening, "opening", 0),
        *development,
        PlannedShot(genre.climax, "climax", 0),
        PlannedShot(genre.ending, "ending", 0),
    ]


def split_duration(total_seconds: float, weights: list[float]) -> list[float]:
    """Durations proportional to `weights` that add up exactly to the total.

    Works in quanta of 0.5 s (0.25 s for very short scenes) so sums are exact in binary floats;
    no scene gets more than MAX_SCENE_SECONDS, so a longer total is capped at count × that.
    """
    count = len(weights)
    total_seconds = min(total_seconds, MAX_SCENE_SECONDS * count)
    quantum = 0.5 if total_seconds / count >= 1 else 0.25
    total_units = round(total_seconds / quantum)
    cap_units = round(MAX_SCENE_SECONDS / quantum)
    weight_sum = sum(weights)
    ideal = [w / weight_sum * total_units for w in weights]
    units = [1] * count
    for _ in range(total_units - count):
        open_scenes = [i for i in range(count) if units[i] < cap_units]
        neediest = max(open_scenes, key=lambda i: ideal[i] - units[i])
        units[neediest] += 1
    return [u * quantum for u in units]


def pick_camera(shot: PlannedShot, style: Style, recent: list[Camera]) -> Camera:
    """The beat's own shot, unless one of the last two scenes used it or the beat is reused."""
    preferred = shot.beat.camera
    if shot.variation:
        preferred = style.cameras[(shot.variation - 1) % len(style.cameras)]
    avoid = recent[-RECENT_CAMERAS:]
    if preferred not in avoid:
        return preferred
    return next(camera for camera in (*style.cameras, *Camera) if camera not in avoid)


class _SceneWriter:
    """Fills a beat's templates for one script's language, topic, subject and style."""

    def __init__(self, language: ScriptLanguage, topic: str, subject: str, style: Style):
        self.language = language
        self.topic = topic
        self.subject = subject
        self.style = style

    def scene(
        self, number: int, shot: PlannedShot, detail: str, camera: Camera, duration: float
    ) -> Scene:
        zh = self.language == "zh"
        description, action, narration = (
            self._fill(text, detail) for text in (shot.beat.zh if zh else shot.beat.en).parts
        )
        description = self._featuring(description, detail)
        visual = shot.beat.visual.format(subject=self.subject)
        if shot.variation:
            extra = VARIATIONS[(shot.variation - 1) % len(VARIATIONS)]
            description += f"，{extra.zh}" if zh else f", {extra.en}"
            visual = f"{visual}, {extra.visual}"
        return Scene(
            scene_number=number,
            description=description,
            duration=duration,
            camera=camera,
            action=action,
            narration=narration,
            visual_prompt=f"{visual}, {self.style.visual}"
            if camera.value in visual
            else f"{visual}, {camera.value}, {self.style.visual}",
        )

    def _fill(self, template: str, detail: str) -> str:
        text = template.format(topic=self.topic, detail=detail)
        return text if self.language == "zh" else text[:1].upper() + text[1:]

    def _featuring(self, description: str, detail: str) -> str:
        """Works an unused prompt keyword into a beat that has no slot for one."""
        if detail in description or detail in self.topic:
            return description
        return description + (
            f"，画面中有{detail}" if self.language == "zh" else f", with {detail} in frame"
        )
