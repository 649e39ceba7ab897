"""Narration as subtitles (SRT, WebVTT): each scene's line split into readable cues that share
the scene's time in proportion to their length, so no cue leaves its scene.

A cue is one line of at most MAX_LINE_CHARS characters for the script's language
(constants.SUBTITLE_LINE_CHARS: 16 for Chinese and Korean, 13 for Japanese, 42 for the Latin
scripts, the per-line limits of Netflix's timed-text style guides). Lines break after clause
punctuation first, then between words (spaced languages: en, es, fr, de, ko) or evenly between
characters (Chinese, Japanese).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta

import srt

from deployments.storyboard.constants import LANGUAGE_SCRIPTS, SUBTITLE_LINE_CHARS, ScriptLanguage
from deployments.storyboard.exports.timing import SceneSpan, scene_spans, to_milliseconds
from deployments.storyboard.models import VideoScript

MAX_LINE_CHARS: dict[ScriptLanguage, int] = SUBTITLE_LINE_CHARS  # per language, in constants
# A clause ends after one of these (and, where words are spaced, the space that follows it).
_UNSPACED_CLAUSE_END = re.compile(r"(?<=[。！？；，、：…,.!?;:])")
_SPACED_CLAUSE_END = re.compile(r"(?<=[.!?;:,…])\s+")


def _spaced(language: ScriptLanguage) -> bool:
    """Whether words are separated by spaces (and a line may break only between them): every
    language but Chinese and Japanese; Korean spaces its words too."""
    return LANGUAGE_SCRIPTS[language] not in ("hanzi", "kana")


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    text: str


def subtitle_cues(script: VideoScript) -> list[Cue]:
    """Every scene's narration as cues inside that scene's span; scenes without narration
    have none."""
    cues: list[Cue] = []
    for span in scene_spans(script):
        lines = narration_lines(span.scene.narration, script.language)
        cues.extend(_timed(lines, span))
    return cues


def narration_lines(text: str, language: ScriptLanguage) -> list[str]:
    """`text` in lines of at most MAX_LINE_CHARS[language] characters, in reading order: whole
    clauses where they fit, in as few lines as that takes, made as even as they can be."""
    limit, joiner = MAX_LINE_CHARS[language], " " if _spaced(language) else ""
    text = " ".join(text.split())
    clause_end = _SPACED_CLAUSE_END if _spaced(language) else _UNSPACED_CLAUSE_END
    clauses = filter(None, (part.strip() for part in clause_end.split(text)))
    pieces = [piece for clause in clauses for piece in _pieces(clause, limit, language)]
    return _balanced(pieces, limit, joiner)


def _pieces(clause: str, limit: int, language: ScriptLanguage) -> list[str]:
    """A clause that fits, or the clause cut into pieces that do."""
    if len(clause) <= limit:
        return [clause]
    if _spaced(language):
        words = [part for word in clause.split(" ") for part in _even_parts(word, limit)]
        return _balanced(words, limit, " ")
    return _even_parts(clause, limit)


def _balanced(units: list[str], limit: int, joiner: str) -> list[str]:
    """`units` joined into as few lines as filling each up to `limit` needs, at the narrowest
    width that still needs no more (no lone last word or clause)."""
    if not units:
        return []
    fewest = len(_fill(units, limit, joiner))
    narrowest = math.ceil(len(joiner.join(units)) / fewest)
    for width in range(narrowest, limit + 1):
        lines = _fill(units, width, joiner)
        if len(lines) == fewest:
            return lines
    return _fill(units, limit, joiner)


def _fill(units: list[str], width: int, joiner: str) -> list[str]:
    lines: list[str] = []
    for unit in units:
        if lines and len(lines[-1]) + len(joiner) + len(unit) <= width:
            lines[-1] += joiner + unit
        else:
            lines.append(unit)
    return lines


def _even_parts(text: str, limit: int) -> list[str]:
    """`text` in the fewest parts of at most `limit` characters, as equal as they can be."""
    count = math.ceil(len(text) / limit)
    size = math.ceil(len(text) / count)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _timed(lines: list[str], span: SceneSpan) -> list[Cue]:
    start, end = to_milliseconds(span.start), to_milliseconds(span.end)
    total = sum(len(line) for line in lines)
    cues, said = [], 0
    for line in lines:
        begin = start + round((end - start) * said / total)
        said += len(line)
        cues.append(Cue(begin, start + round((end - start) * said / total), line))
    return cues


def to_srt(script: VideoScript) -> str:
    """SubRip, written by the `srt` library."""
    subtitles = [
        srt.Subtitle(
            index=number,
            start=timedelta(milliseconds=cue.start_ms),
            end=timedelta(milliseconds=cue.end_ms),
            content=cue.text,
        )
        for number, cue in enumerate(subtitle_cues(script), start=1)
    ]
    return srt.compose(subtitles, reindex=False)


def to_webvtt(script: VideoScript) -> str:
    """WebVTT, hand-written: a header and one block per cue, text escaped as the format asks
    (the libraries that write it add nothing to this)."""
    blocks = ["WEBVTT"]
    for number, cue in enumerate(subtitle_cues(script), start=1):
        timing = f"{_vtt_time(cue.start_ms)} --> {_vtt_time(cue.end_ms)}"
        blocks.append(f"{number}\n{timing}\n{_vtt_text(cue.text)}")
    return "\n\n".join(blocks) + "\n"


def _vtt_time(milliseconds: int) -> str:
    seconds, millis = divmod(milliseconds, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _vtt_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
