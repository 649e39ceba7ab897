"""Structural quality metrics of a storyboard against the request that asked for it.

One home for the numbers the fallback tests assert and `scripts/eval_scripts.py` reports for a
live service, so a real model and the fallback are scored the same way.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass

from deployments.storyboard.constants import DEFAULT_DURATION_S, DEFAULT_SCENE_RANGE
from deployments.storyboard.fallback.glossary import EN_TO_ZH, ZH_TO_EN
from deployments.storyboard.fallback.keywords import extract_terms
from deployments.storyboard.language import cjk_count, resolve_language
from deployments.storyboard.models import ScriptRequest, VideoScript

MIN_CHINESE_SHARE = 0.5  # of the letters in a zh script's text
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


@dataclass(frozen=True)
class ScriptMetrics:
    scenes: int
    distinct_scene_ratio: float  # unique descriptions / scenes
    repeats_prompt: bool  # some description is just the prompt again
    duration_error_s: float  # |total - requested (or DEFAULT_DURATION_S)|
    scene_count_ok: bool  # == num_scenes when given, else within DEFAULT_SCENE_RANGE
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
    target = request.duration_s or DEFAULT_DURATION_S
    if request.num_scenes:
        count_ok = len(script.scenes) == request.num_scenes
    else:
        low, high = DEFAULT_SCENE_RANGE
        count_ok = low <= len(script.scenes) <= high
    return ScriptMetrics(
        scenes=len(script.scenes),
        distinct_scene_ratio=len(set(descriptions)) / len(descriptions),
        repeats_prompt=any(d == request.prompt.strip() for d in descriptions),
        duration_error_s=round(abs(script.total_duration - target), 3),
        scene_count_ok=count_ok,
        language_ok=language_matches(request, script),
        visual_prompts_english=all(not cjk_count(s.visual_prompt) for s in script.scenes),
        keyword_coverage=keyword_coverage(request, script),
        distinct_cameras=len(set(cameras)),
        back_to_back_camera_repeats=sum(a == b for a, b in itertools.pairwise(cameras)),
        foreign_fragments=len(foreign_fragments(request, script)),
    )


def foreign_fragments(request: ScriptRequest, script: VideoScript) -> list[str]:
    """Words of the other language in the script's own lines (visual prompts are English by
    design). A Chinese script may keep the prompt's capitalized names (Kyoto, iPhone)."""
    lines = [script.title] + [
        text for s in script.scenes for text in (s.description, s.action, s.narration)
    ]
    if script.language == "en":
        return [line for line in lines if cjk_count(line)]
    names = {word for word in _LATIN_WORD.findall(request.prompt) if not word.islower()}
    return [w for line in lines for w in _LATIN_WORD.findall(line) if w not in names]


def language_matches(request: ScriptRequest, script: VideoScript) -> bool:
    """The script says the requested language, and its words are written in it."""
    language = resolve_language(request)
    text = "".join(s.description + s.action + s.narration for s in script.scenes)
    letters = sum(ch.isalpha() for ch in text) or 1
    chinese_share = cjk_count(text) / letters
    written_ok = chinese_share >= MIN_CHINESE_SHARE if language == "zh" else chinese_share == 0
    return script.language == language and written_ok


def keyword_coverage(request: ScriptRequest, script: VideoScript) -> float:
    """Share of the prompt's keywords, in the script's language where they translate, that the
    script's title, scenes or visual prompts mention; 1.0 when the prompt has none."""
    language = resolve_language(request)
    keywords = [_in_language(word, language) for word in extract_terms(request.prompt).keywords]
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


def _in_language(word: str, language: str) -> str:
    """`word` as the script would write it; empty when it has no known translation."""
    if bool(cjk_count(word)) == (language == "zh"):
        return word
    return ZH_TO_EN.get(word, "") if language == "en" else EN_TO_ZH.get(word.lower(), "")
