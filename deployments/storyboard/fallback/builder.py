"""Build a real storyboard without a model: genre arc × style × the prompt's own words.

Deterministic: the same request always gets the same script, so the fallback is testable and
cache-friendly. Scene count and total duration follow the request; each scene is a distinct beat.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from deployments.storyboard.constants import (
    LANGUAGE_SCRIPTS,
    MAX_TITLE_CHARS,
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
from deployments.storyboard.fallback.terms import Term, of_kind, subject_of, typed_terms
from deployments.storyboard.korean import attach_particle
from deployments.storyboard.language import east_asian_count, resolve_language
from deployments.storyboard.lengths import planned_duration, planned_scene_count, share_duration
from deployments.storyboard.look import apply_look
from deployments.storyboard.models import Character, Scene, ScriptRequest, VideoScript
from deployments.storyboard.narration import fit_narration
from deployments.storyboard.slots import render
from deployments.storyboard.styles import STYLES, Style, find_style

# What joins a variation to a description: the language's comma.
VARIATION_JOINERS: dict[str, str] = {"zh": "，", "ja": "、"}
ROLE_WEIGHTS = {"opening": 0.8, "development": 1.0, "climax": 1.3, "ending": 0.9}
RECENT_CAMERAS = 2  # a shot type does not come back within this many scenes
# A word of any Latin-script language (café, bäckerei); hanzi, kana and hangul end it (探店vlog).
_WORD = re.compile(r"[^\W\d_\u3040-\u30ff\u3400-\u9fff\uac00-\ud7a3\uf900-\ufaff]+")
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
    genre = choose_genre(request.prompt)
    style = choose_style(request.style, request.prompt, genre)
    total = planned_duration(request.duration_s, request.num_scenes)
    shots = plan_arc(genre, planned_scene_count(request.duration_s, request.num_scenes))
    durations = share_duration(total, [ROLE_WEIGHTS[shot.role] for shot in shots])

    words = extract_terms(request.prompt)
    topic = words.topic_in(language, genre.topic.in_language(language))
    writer = _SceneWriter(language, genre, topic, typed_terms(request.prompt), style)
    cast = cast_scenes(shots, request.characters)
    scenes = []
    cameras: list[Camera] = []
    for number, (shot, duration) in enumerate(zip(shots, durations, strict=True), start=1):
        cameras.append(pick_camera(shot, style, cameras))
        scene = writer.scene(number, shot, cameras[-1], duration)
        scenes.append(scene.model_copy(update={"characters": cast[number - 1]}))
    title = writer.fill(genre.title.in_language(language), 0)
    if LANGUAGE_SCRIPTS[language] == "latin":
        title = title[:1].upper() + title[1:]
    script = VideoScript(
        title=title[:MAX_TITLE_CHARS],
        language=language,
        total_duration=sum(durations),
        scenes=scenes,
        characters=list(request.characters),
    )
    return apply_look(script, request)


def cast_scenes(shots: list[PlannedShot], characters: list[Character]) -> list[list[str]]:
    """Who is in each shot: the protagonist (the first character) in every scene but the
    opening establishing shot of a longer arc; the others one at a time in every other
    development scene, all together at the climax (or, without one, the last scene); the ending
    brings the protagonist back with the first of them. Every character appears at least once."""
    if not characters:
        return [[] for _ in shots]
    protagonist, others = characters[0].name, [c.name for c in characters[1:]]
    everyone = [protagonist, *others]
    gathering = next((i for i, shot in enumerate(shots) if shot.role == "climax"), len(shots) - 1)
    cast = []
    development = 0
    for index, shot in enumerate(shots):
        if index == gathering:
            cast.append(everyone)
        elif shot.role == "opening" and len(shots) >= 4:
            cast.append([])
        elif shot.role == "development" and others and development % 2:
            cast.append([protagonist, others[development // 2 % len(others)]])
            development += 1
        elif shot.role == "development":
            cast.append([protagonist])
            development += 1
        elif shot.role == "ending":
            cast.append(everyone[:2])
        else:
            cast.append([protagonist])
    return cast


def fallback_template(request: ScriptRequest) -> str:
    """The name of the genre template the fallback writes `request` with."""
    return choose_genre(request.prompt).name


def choose_genre(prompt: str, library: GenreLibrary = LIBRARY) -> Genre:
    """The genre whose cues in the prompt weigh most (on a tie, the one of lower priority); the
    general one when none. A cue found inside a longer found cue does not count (人工智能 hides
    智能), and each cue counts once."""
    found = _cues_found(prompt.lower(), library)
    scores: dict[str, float] = {}
    for (start, end), genre, weight in found:
        hidden = any(s <= start and end <= e and (e - s) > (end - start) for (s, e), _, _ in found)
        if not hidden:
            scores[genre.name] = scores.get(genre.name, 0.0) + weight
    best, best_score = library.general, 0.0
    for genre in library.genres:  # by priority: a later genre must weigh more to win
        if scores.get(genre.name, 0.0) > best_score:
            best, best_score = genre, scores[genre.name]
    return best


def _cues_found(lowered: str, library: GenreLibrary) -> list[tuple[tuple[int, int], Genre, float]]:
    """(span, genre, weight) of the first place each cue of each genre occurs in the prompt."""
    words = [(match.group(), match.start(), match.end()) for match in _WORD.finditer(lowered)]
    found = []
    for genre in library.genres:
        for cue, weight in genre.cues.items():
            span = _find_cue(cue, lowered, words)
            if span is not None:
                found.append((span, genre, weight))
    return found


def _find_cue(cue: str, lowered: str, words: list[tuple[str, int, int]]) -> tuple[int, int] | None:
    """Cues in hanzi, kana or hangul match as substrings; Latin-script ones as whole words
    (stems of four letters or more as word prefixes), several words as consecutive words."""
    if east_asian_count(cue):
        start = lowered.find(cue)
        return None if start == -1 else (start, start + len(cue))
    parts = _WORD.findall(cue)  # "sci-fi short": sci, fi, short, as the prompt is split
    for i in range(len(words) - len(parts) + 1):
        window = words[i : i + len(parts)]
        if all(_word_matches(part, word) for part, (word, _, _) in zip(parts, window, strict=True)):
            return window[0][1], window[-1][2]
    return None


def _word_matches(cue: str, word: str) -> bool:
    if len(cue) >= 4:
        return word.startswith(cue)
    return word in (cue, cue + "s", cue + "es")


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


def _mentions_alias(alias: str, lowered: str, tokens: list[str]) -> bool:
    return alias in lowered if east_asian_count(alias) else alias in tokens


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
    """Fills a genre's templates for one script: its language, topic, the prompt's typed words
    and style. A slot takes a word of its kind, in rotation over the scenes, else its default;
    of several words of its kind, one the script's lines have not written yet comes first (so a
    prompt's second place or thing reaches the script even where its genre has few such slots).
    """

    def __init__(
        self,
        language: ScriptLanguage,
        genre: Genre,
        topic: str,
        terms: tuple[Term, ...],
        style: Style,
    ):
        self.language = language
        self.genre = genre
        self.topic = topic
        self.terms = terms
        self.subject = subject_of(terms, genre.subject_kind)
        self.style = style
        self.used: dict[Term, int] = {}  # how often the script's lines wrote each term

    def scene(self, number: int, shot: PlannedShot, camera: Camera, duration: float) -> Scene:
        texts = shot.beat.texts(self.language).parts
        description, action, narration = (self.fill(text, number) for text in texts)
        narration = fit_narration(narration, duration, self.language)
        visual = self.fill(shot.beat.visual, number, visual=True)
        if camera is not shot.beat.camera:  # the beat's own shot was swapped for variety
            visual = visual.replace(shot.beat.camera.value, camera.value)
        if shot.variation:
            extra = VARIATIONS[(shot.variation - 1) % len(VARIATIONS)]
            description += VARIATION_JOINERS.get(self.language, ", ") + extra.in_language(
                self.language
            )
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

    def fill(self, template: str, number: int, visual: bool = False) -> str:
        """`template` with its slots filled; English visuals take bare English words."""
        language: ScriptLanguage = "en" if visual else self.language
        counter = iter(range(100))

        def word(name: str, default: str | None) -> str:
            rotation = number + next(counter)
            if name == "topic":
                return self.topic if not visual else self._subject_words(visual=True)
            if name == "subject":
                return self._subject_words(visual)
            candidates = [t for t in of_kind(self.terms, name) if t.written(language)]  # type: ignore[arg-type]
            if not candidates:
                return default if default is not None else self._subject_words(visual)
            if not visual:
                fewest = min(self.used.get(t, 0) for t in candidates)
                candidates = [t for t in candidates if self.used.get(t, 0) == fewest]
            term = candidates[rotation % len(candidates)]
            if not visual:
                self.used[term] = self.used.get(term, 0) + 1
            written = term.written(language) if visual else term.in_sentence(language)
            return written or (default or "")

        attach = attach_particle if self.language == "ko" and not visual else None
        text = render(template, word, attach)
        if visual or LANGUAGE_SCRIPTS[self.language] != "latin":
            return text  # an English name at the start of a Chinese line keeps its case (iPhone)
        return text[:1].upper() + text[1:]

    def _subject_words(self, visual: bool) -> str:
        language: ScriptLanguage = "en" if visual else self.language
        if self.subject is not None:
            written = (
                self.subject.written(language) if visual else self.subject.in_sentence(language)
            )
            if written:
                return written
        return self.genre.topic.in_language(language)
