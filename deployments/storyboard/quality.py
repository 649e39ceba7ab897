"""Structural quality metrics of a storyboard against the request that asked for it.

One home for the numbers the fallback tests assert, `scripts/eval_scripts.py` reports for a
live service and every task shows as `quality` (QualityReport), so a real model and the fallback
are scored the same way.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from deployments.storyboard.constants import LANGUAGE_SCRIPTS, ScriptLanguage
from deployments.storyboard.fallback.builder import choose_genre, plan_arc
from deployments.storyboard.fallback.glossary import BY_EN, BY_ZH, EN_TO_ZH, ZH_TO_EN, lookup
from deployments.storyboard.fallback.keywords import extract_terms
from deployments.storyboard.fallback.library import Genre
from deployments.storyboard.fallback.terms import Term, of_kind, subject_of, typed_terms
from deployments.storyboard.korean import PARTICLE_AFTER_SLOT, either_form
from deployments.storyboard.language import (
    cjk_count,
    east_asian_count,
    hangul_count,
    kana_count,
    resolve_language,
)
from deployments.storyboard.languages import detect_language
from deployments.storyboard.lengths import (
    DURATION_QUANTUM_S,
    planned_duration,
    scene_count_range,
)
from deployments.storyboard.models import Scene, ScriptRequest, VideoScript
from deployments.storyboard.narration import (
    budget_unit,
    narration_budget,
    shortenings,
    spoken_length,
)
from deployments.storyboard.slots import SLOT

MIN_CHINESE_SHARE = 0.5  # of the letters in a zh script's text
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_JAPANESE_LATIN = frozenset({"Vlog", "PR", "SNS", "CM"})  # Latin words Japanese writes as is


@dataclass(frozen=True)
class ScriptMetrics:
    scenes: int
    distinct_scene_ratio: float  # unique descriptions / scenes
    repeats_prompt: bool  # some description is just the prompt again
    duration_error_s: float  # |total - requested (or the planned default)|
    scene_count_ok: bool  # == num_scenes when given, else within the range asked for
    language_ok: bool  # declared language and the text's script both match the request
    visual_prompts_english: bool
    keyword_coverage: float  # share of the prompt's keywords the script mentions
    distinct_cameras: int
    back_to_back_camera_repeats: int
    # Words in the other language in title, description, action or narration: English in a
    # Chinese script (names from the prompt excepted), Chinese in an English one.
    foreign_fragments: int

    def as_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


def score_script(request: ScriptRequest, script: VideoScript) -> ScriptMetrics:
    descriptions = [scene.description.strip() for scene in script.scenes]
    cameras = [scene.camera for scene in script.scenes]
    target = planned_duration(request.duration_s, request.num_scenes)
    return ScriptMetrics(
        scenes=len(script.scenes),
        distinct_scene_ratio=distinct_scene_ratio(script),
        repeats_prompt=any(d == request.prompt.strip() for d in descriptions),
        duration_error_s=round(abs(script.total_duration - target), 3),
        scene_count_ok=scene_count_ok(request, script),
        language_ok=language_matches(request, script),
        visual_prompts_english=visual_prompts_english(script),
        keyword_coverage=keyword_coverage(request, script),
        distinct_cameras=len(set(cameras)),
        back_to_back_camera_repeats=sum(a == b for a, b in itertools.pairwise(cameras)),
        foreign_fragments=len(foreign_fragments(request, script)),
    )


class NarrationFit(BaseModel):
    scene_number: int
    length: int = Field(description="What the line takes to say, in `unit`.")
    budget: int = Field(
        description="What the scene's seconds can carry (NARRATION_RATES: characters a second "
        "for zh/ja/ko, words a second for en/es/fr/de)."
    )
    unit: Literal["characters", "words"]
    fits: bool


class CharacterCoverage(BaseModel):
    name: str
    scenes: list[int] = Field(description="Numbers of the scenes the character is in.")


class QualityReport(BaseModel):
    """How the script meets its request: computed on every read, never stored."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "duration_ok": True,
                "requested_duration_s": 12.0,
                "total_duration_s": 12.0,
                "scene_count_ok": True,
                "narration_ok": True,
                "narration": [
                    {"scene_number": 1, "length": 8, "budget": 30, "unit": "characters",
                     "fits": True},
                    {"scene_number": 2, "length": 8, "budget": 30, "unit": "characters",
                     "fits": True},
                ],
                "distinct_scene_ratio": 1.0,
                "language_ok": True,
                "visual_prompts_english": True,
                "character_coverage": 1.0,
                "characters": [{"name": "小林", "scenes": [1]}],
            }
        }
    )  # fmt: skip

    duration_ok: bool = Field(description="The scenes add up to the requested (or planned) total.")
    requested_duration_s: float
    total_duration_s: float
    scene_count_ok: bool = Field(
        description="num_scenes when the request gave it, else within the range asked for."
    )
    narration_ok: bool = Field(description="Every scene's narration fits its seconds.")
    narration: list[NarrationFit]
    distinct_scene_ratio: float = Field(
        description="Distinct descriptions / scenes (1.0: none repeat)."
    )
    language_ok: bool = Field(description="Declared and written in the requested language.")
    visual_prompts_english: bool = Field(description="No Chinese in any visual prompt.")
    character_coverage: float = Field(
        description="Share of the request's characters in at least one scene (1.0 without any)."
    )
    characters: list[CharacterCoverage] = Field(default_factory=list)


def quality_report(request: ScriptRequest, script: VideoScript) -> QualityReport:
    """The report a task shows for `script` written for `request` (an edited revision too)."""
    target = planned_duration(request.duration_s, request.num_scenes)
    fits = [narration_fit(scene, script.language) for scene in script.scenes]
    coverage = [
        CharacterCoverage(
            name=character.name,
            scenes=[s.scene_number for s in script.scenes if character.name in s.characters],
        )
        for character in request.characters
    ]
    present = sum(bool(c.scenes) for c in coverage)
    return QualityReport(
        duration_ok=abs(script.total_duration - target) < DURATION_QUANTUM_S,
        requested_duration_s=target,
        total_duration_s=script.total_duration,
        scene_count_ok=scene_count_ok(request, script),
        narration_ok=all(fit.fits for fit in fits),
        narration=fits,
        distinct_scene_ratio=round(distinct_scene_ratio(script), 3),
        language_ok=language_matches(request, script),
        visual_prompts_english=visual_prompts_english(script),
        character_coverage=round(present / len(coverage), 3) if coverage else 1.0,
        characters=coverage,
    )


def scene_count_ok(request: ScriptRequest, script: VideoScript) -> bool:
    """num_scenes when the request gave it, else within the range the model was asked for."""
    if request.num_scenes:
        return len(script.scenes) == request.num_scenes
    low, high = scene_count_range(planned_duration(request.duration_s, request.num_scenes))
    return low <= len(script.scenes) <= high


def distinct_scene_ratio(script: VideoScript) -> float:
    descriptions = [scene.description.strip() for scene in script.scenes]
    return len(set(descriptions)) / len(descriptions)


def visual_prompts_english(script: VideoScript) -> bool:
    return all(not east_asian_count(scene.visual_prompt) for scene in script.scenes)


def narration_fit(scene: Scene, language: ScriptLanguage) -> NarrationFit:
    length = spoken_length(scene.narration, language)
    budget = narration_budget(scene.duration, language)
    return NarrationFit(
        scene_number=scene.scene_number,
        length=length,
        budget=budget,
        unit=budget_unit(language),
        fits=length <= budget,
    )


def foreign_fragments(request: ScriptRequest, script: VideoScript) -> list[str]:
    """Words of the other language in the script's own lines (visual prompts are English by
    design). A Chinese script may keep the prompt's capitalized names (Kyoto, iPhone)."""
    lines = [script.title] + [
        text for s in script.scenes for text in (s.description, s.action, s.narration)
    ]
    if script.language == "en":
        return [line for line in lines if cjk_count(line)]
    if LANGUAGE_SCRIPTS[script.language] == "latin":
        return [line for line in lines if east_asian_count(line)]
    names = {word for word in _LATIN_WORD.findall(request.prompt) if not word.islower()}
    if script.language == "ja":  # a Japanese script writes Vlog, iPhone, PR as they are
        names |= set(_LATIN_WORD.findall(" ".join(lines))) & _JAPANESE_LATIN
    foreign = [w for line in lines for w in _LATIN_WORD.findall(line) if w not in names]
    if script.language != "ko":
        foreign += [line for line in lines if hangul_count(line)]
    if script.language != "ja":
        foreign += [line for line in lines if kana_count(line)]
    return foreign


def language_matches(request: ScriptRequest, script: VideoScript) -> bool:
    """The script says the requested language, and its words are written in it."""
    language = resolve_language(request)
    text = "".join(s.description + s.action + s.narration for s in script.scenes)
    letters = sum(ch.isalpha() for ch in text) or 1
    chinese_share = cjk_count(text) / letters
    if language == "zh":
        written_ok = chinese_share >= MIN_CHINESE_SHARE and not kana_count(text)
    elif language == "ja":
        written_ok = (cjk_count(text) + kana_count(text)) / letters >= MIN_CHINESE_SHARE and bool(
            kana_count(text)
        )
    elif language == "ko":
        written_ok = hangul_count(text) / letters >= MIN_CHINESE_SHARE
    elif language == "en":
        written_ok = chinese_share == 0
    else:  # es, fr, de: Latin letters only, and the detector reads the language
        spaced = " ".join(s.description + " " + s.narration for s in script.scenes)
        written_ok = not east_asian_count(text) and detect_language(spaced) == language
    return script.language == language and written_ok


def keyword_coverage(request: ScriptRequest, script: VideoScript) -> float:
    """Share of the prompt's keywords, in the script's language where they translate, that the
    script's title, scenes or visual prompts mention; 1.0 when the prompt has none."""
    language = resolve_language(request)
    terms = extract_terms(request.prompt)
    keywords = [_in_language(word, language, terms.language) for word in terms.keywords]
    keywords = [word for word in keywords if word]
    if not keywords:
        return 1.0
    text = " ".join(
        [script.title]
        + [
            s.description + " " + s.action + " " + s.narration + " " + s.visual_prompt
            for s in script.scenes
        ]
    ).lower()
    return round(sum(word.lower() in text for word in keywords) / len(keywords), 3)


def _in_language(word: str, language: ScriptLanguage, prompt_language: ScriptLanguage) -> str:
    """`word` as the script would write it; empty when it has no known translation."""
    if prompt_language not in ("zh", "en") or language not in ("zh", "en"):
        if language == prompt_language:
            return word
        entry = BY_ZH.get(word) if prompt_language == "zh" else None
        if prompt_language not in ("zh", "en"):
            entry = lookup(word, prompt_language)
        if entry is None and prompt_language == "en":
            entry = BY_EN.get(word.lower())
        return (entry.word(language) if entry is not None else None) or ""
    if bool(cjk_count(word)) == (language == "zh"):
        return word
    return ZH_TO_EN.get(word, "") if language == "en" else EN_TO_ZH.get(word.lower(), "")


def slot_misfits(request: ScriptRequest, script: VideoScript) -> list[str]:
    """For a script the fallback wrote: every slot its templates filled with a word that is
    neither the slot's default nor a prompt keyword of the slot's kind (the subject: the
    genre's subject or its stand-in). Each template line is matched against the line written
    from it, so this reads what the script says, not what the builder meant to write."""
    genre = choose_genre(request.prompt)
    language = script.language
    terms = typed_terms(request.prompt)
    misfits = []
    for shot, scene in zip(plan_arc(genre, len(script.scenes)), script.scenes, strict=True):
        texts = shot.beat.texts(language).parts
        lines = (scene.description, scene.action, scene.narration)
        # The narration may be cut to whole sentences or clauses to fit its scene, or left out.
        written = [
            ((texts[0],), scene.description, language, False),
            ((texts[1],), scene.action, language, False),
            (tuple(shortenings(texts[2], language)), scene.narration, language, False),
            ((shot.beat.visual,), scene.visual_prompt, "en", True),
        ]
        for templates, line, line_language, visual in written:
            template = templates[0]
            if not line:
                continue  # a silent shot: no part of the narration fitted its scene
            fitting = {
                (name, default): _fitting_words(genre, terms, name, default, line_language, visual)
                for name, default in _slots(template)
            }
            lines = [line]
            if visual:  # the scene's camera may have replaced the beat's own
                lines.append(line.replace(scene.camera.value, shot.beat.camera.value, 1))
            if any(_written_with(t, candidate, fitting) for t in templates for candidate in lines):
                continue
            fills = _slot_fills(template, lines[-1])
            wrong = [
                f"{{{n}}} took {w!r}" for n, d, w in fills or [] if w.lower() not in fitting[n, d]
            ]
            problem = "; ".join(wrong) or f"{line!r} is not written from {template!r}"
            misfits.append(f"scene {scene.scene_number}: {problem}")
    return misfits


def _slots(template: str) -> list[tuple[str, str | None]]:
    return [(match.group(1), match.group(2)) for match in SLOT.finditer(template)]


def _pattern(template: str, slot: Callable[[re.Match], str]) -> str:
    """`template` as a regular expression: its text literal, each slot as `slot` writes it (a
    Korean particle right after a slot in either of its forms: the filled word picks one)."""
    pattern, position, after_slot = "", 0, False
    for match in SLOT.finditer(template):
        pattern += _literal(template[position : match.start()], after_slot) + slot(match)
        position, after_slot = match.end(), True
    return pattern + _literal(template[position:], after_slot) + "(?:[，,].*)?"


def _literal(text: str, after_slot: bool) -> str:
    particle = PARTICLE_AFTER_SLOT.match(text) if after_slot else None
    if particle is None:
        return re.escape(text)
    forms = "|".join(map(re.escape, either_form(particle.group(1))))
    return f"(?:{forms})" + re.escape(text[particle.end() :])


def _written_with(template: str, line: str, fitting: dict[tuple, set[str]]) -> bool:
    """Whether `line` is `template` with every slot filled by one of its fitting words (adjacent
    slots, "{subject}{activity|…}", are tried every way they can split)."""

    def slot(match: re.Match) -> str:
        if match.group(1) == "topic":
            return "(?:.+?)"
        words = sorted(fitting[match.group(1), match.group(2)], key=len, reverse=True)
        return "(?:" + "|".join(map(re.escape, words)) + ")" if words else "(?!)"

    return re.fullmatch(_pattern(template, slot), line, re.IGNORECASE | re.DOTALL) is not None


def _slot_fills(template: str, line: str) -> list[tuple[str, str | None, str]] | None:
    """(slot, default, the words that filled it), reading each slot as short as it can be: for
    naming the slot that went wrong."""
    found = re.fullmatch(_pattern(template, lambda _: "(.+?)"), line, re.IGNORECASE | re.DOTALL)
    if found is None:
        return None
    return [(*slot, word) for slot, word in zip(_slots(template), found.groups(), strict=True)]


def _fitting_words(
    genre: Genre,
    terms: tuple[Term, ...],
    name: str,
    default: str | None,
    language: ScriptLanguage,
    visual: bool,
) -> set[str]:
    if name == "subject":
        chosen = subject_of(terms, genre.subject_kind)
        candidates = [chosen] if chosen else []
        words = {genre.topic.in_language(language)}
    else:
        candidates = of_kind(terms, name)  # type: ignore[arg-type]
        words = {default or ""}
    for term in candidates:
        words |= {term.written(language) or "", "" if visual else term.in_sentence(language) or ""}
    return {word.lower() for word in words if word}
