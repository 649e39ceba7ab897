"""The other script languages' words for a prompt's length and scene count (ja, ko, es, fr, de:
30秒, 5개 장면, 30 segundos, 5 scènes, 30 Sekunden), as regular expressions built from
data/languages/<code>.yaml (`hints`), for hints.py, which reads zh/en with its own rules.
"""

from __future__ import annotations

import re

from deployments.storyboard.language import kana_count
from deployments.storyboard.languages import LANGUAGES
from deployments.storyboard.numbers import ZH_NUMBER, number_value

_FLAGS = re.IGNORECASE


def _words(words: tuple[str, ...] | list[str]) -> str:
    return "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))


_HINTS = {code: language.hints for code, language in LANGUAGES.items() if language.hints.seconds}
_LANGUAGE_NUMBERS: dict[str, int] = {}
for _hints in _HINTS.values():
    _LANGUAGE_NUMBERS |= {word.lower(): value for word, value in _hints.numbers.items()}
_LANGUAGE_ARTICLES = frozenset(word.lower() for h in _HINTS.values() for word in h.articles)
_PER_SCENE_WORDS = tuple(word.lower() for h in _HINTS.values() for word in h.per_scene)
_TOTAL_WORDS = tuple(word.lower() for h in _HINTS.values() for word in h.total)
_NUMBER_WORDS = _words(list(_LANGUAGE_NUMBERS))
_LANGUAGE_NUMBER = rf"(?:\d{{1,6}}(?:[.,]\d{{1,3}})?|{ZH_NUMBER}|(?<![^\W\d_])(?:{_NUMBER_WORDS}))"
_END = r"(?![^\W\d_])"  # a Latin-script unit word ends there (30 segundos, not 30 segundosx)


def language_duration_patterns() -> dict[str, re.Pattern[str]]:
    """Each language's duration and count patterns, named lang_<kind>_<code>."""
    patterns: dict[str, re.Pattern[str]] = {}
    for code, hints in _HINTS.items():
        latin = LANGUAGES[code].script == "latin"
        end = _END if latin else ""
        num = rf"(?P<n1>(?<![\d.]){_LANGUAGE_NUMBER})"
        sec, mins = _words(hints.seconds), _words(hints.minutes)
        joiner = rf"(?:[ \t]*(?:{_words(hints.and_)})[ \t]*|[ \t]*)" if hints.and_ else r"[ \t]*"
        patterns[f"lang_compound_{code}"] = re.compile(
            rf"{num}[ \t]*-?[ \t]*(?P<u1>{mins}){end}{joiner}"
            rf"(?P<n2>\d{{1,2}}|{_words(list(hints.numbers)) or '(?!)'})[ \t]*(?:{sec}){end}",
            _FLAGS,
        )
        if hints.half_minute:
            patterns[f"lang_half_{code}"] = re.compile(
                rf"(?:{_words(hints.half_minute)}){end}", _FLAGS
            )
        patterns[f"lang_simple_{code}"] = re.compile(
            rf"{num}[ \t]*-?[ \t]*(?P<u1>{sec}|{mins}){end}", _FLAGS
        )
    return patterns


def language_count_patterns() -> dict[str, re.Pattern[str]]:
    patterns: dict[str, re.Pattern[str]] = {}
    for code, hints in _HINTS.items():
        end = _END if LANGUAGES[code].script == "latin" else ""
        num = rf"(?P<n1>(?<![\d.]){_LANGUAGE_NUMBER})"
        counter = rf"(?:[ \t]*(?:{_words(hints.counters)}))?" if hints.counters else ""
        scenes = _words(hints.scenes)
        patterns[f"lang_count_{code}"] = re.compile(
            rf"{num}{counter}[ \t]*(?:の|의)?[ \t]*(?P<u1>{scenes}){end}", _FLAGS
        )
        if hints.counters:  # 장면 5개: the noun first, then the number and its counter
            patterns[f"lang_count_after_{code}"] = re.compile(
                rf"(?P<u1>{scenes})[ \t]*{num}[ \t]*(?:{_words(hints.counters)})", _FLAGS
            )
    return patterns


def language_number(token: str) -> float:
    lowered = token.lower()
    if lowered in _LANGUAGE_NUMBERS:
        return float(_LANGUAGE_NUMBERS[lowered])
    return number_value(lowered.replace(",", "."))


def _language_unit_seconds(unit: str) -> int:
    lowered = unit.lower()
    return 60 if any(lowered in (w.lower() for w in h.minutes) for h in _HINTS.values()) else 1


def language_context_ok(text: str, start: int, end: int) -> bool:
    """Not a scene's length: no per-scene word (cada, chaque, je, 각, ずつ) just around it."""
    before, after = text[max(0, start - 20) : start].lower(), text[end : end + 12].lower()
    if any(word in before[-6:] for word in _TOTAL_WORDS):  # 장면당 5초씩, 총 40초: the total
        return True
    return not any(word in before or after.lstrip().startswith(word) for word in _PER_SCENE_WORDS)


def is_language_article(token: str) -> bool:
    """ "una", "eine": an article, so "una escena" is a scene, not a count of one."""
    return token.lower() in _LANGUAGE_ARTICLES


def language_total(before: str, after: str) -> bool:
    """A total word (en total, insgesamt, 총, 合計) right before or after a number."""
    tail, head = before[-16:].lower(), after[:16].lower().lstrip()
    return any(word in tail or head.startswith(word) for word in _TOTAL_WORDS)


def applicable(
    patterns: dict[str, re.Pattern[str]], text: str
) -> list[tuple[str, re.Pattern[str]]]:
    """The (kind, pattern) pairs that read `text`: Japanese patterns (秒, 分 after a kanji
    numeral) only text with kana, since in Chinese "十分好看" and "一秒爱上" are no lengths."""
    kana = kana_count(text) > 0
    return [(kind, p) for kind, p in patterns.items() if kana or not kind.endswith("_ja")]


def language_count(token: str) -> tuple[float, bool] | None:
    """(scenes, is a range) of a count's number; None for an article ("una escena donde...":
    a scene, not a count of one) or a fraction."""
    if is_language_article(token):
        return None
    value = language_number(token)
    return (value, False) if value == int(value) else None


def language_duration(kind: str, groups: dict[str, str | None]) -> tuple[float, bool] | None:
    if kind.startswith("lang_half_"):
        return 30.0, False
    n1, unit = groups["n1"] or "", groups["u1"] or ""
    seconds = _language_unit_seconds(unit)
    if n1.lower() in _LANGUAGE_ARTICLES and seconds == 1:
        return None  # "un segundo vídeo": not a length
    if kind.startswith("lang_compound_"):
        return language_number(n1) * 60 + language_number(groups["n2"] or "0"), False
    return language_number(n1) * seconds, False
