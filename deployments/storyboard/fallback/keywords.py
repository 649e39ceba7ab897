"""What a prompt is about: its content words, its topic phrase and English words for visuals.

Chinese goes through jieba's part-of-speech tagger; English through a stop-word filter. Words that
only say "make me a video" are dropped, so "制作一段关于森林探险的短视频" is about 森林探险.
The word lists are data/keywords.yaml.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import jieba
import jieba.posseg
from pydantic import Field

from deployments.storyboard.constants import ScriptLanguage
from deployments.storyboard.content import DATA_DIR, ContentModel, LowerWord, Word, load_file
from deployments.storyboard.fallback.glossary import EN_TO_ZH, ZH_TO_EN
from deployments.storyboard.language import cjk_count
from deployments.storyboard.styles import STYLES

jieba.setLogLevel(logging.WARNING)

MAX_KEYWORDS = 8
MAX_TOPIC_ZH_CHARS = 12
MAX_TOPIC_EN_WORDS = 4
TOPIC_CANDIDATE_PHRASES = 3


class WordLists(ContentModel):
    meta_words_zh: tuple[LowerWord, ...]  # about the request itself rather than its subject
    stop_words_en: tuple[LowerWord, ...]
    # Parts of speech that carry the subject: nouns of every kind, verbal nouns, idioms, foreign
    # words (jieba's tags, matched as prefixes).
    content_flags_zh: Annotated[tuple[Word, ...], Field(min_length=1)]


def load_word_lists(data_dir: Path) -> WordLists:
    return load_file(data_dir / "keywords.yaml", WordLists)


WORD_LISTS = load_word_lists(DATA_DIR)
META_WORDS_ZH = frozenset(WORD_LISTS.meta_words_zh)
STOP_WORDS_EN = frozenset(WORD_LISTS.stop_words_en)
CONTENT_FLAGS_ZH = WORD_LISTS.content_flags_zh
STYLE_ALIASES_ZH = tuple(
    sorted(
        (name for style in STYLES.values() for name in style.names if cjk_count(name)),
        key=len,
        reverse=True,
    )
)

_EN_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_PUNCTUATION = re.compile(r"[^\w\s]")


@dataclass(frozen=True)
class PromptTerms:
    """The prompt's subject in both languages, for narration and for English visual prompts."""

    keywords: tuple[str, ...]  # content words in prompt order, in the prompt's own script
    topic: str  # the longest run of content words: "森林探险", "forest adventure"
    english_words: tuple[str, ...]  # content words usable in an English visual prompt

    def topic_in(self, language: ScriptLanguage, fallback: str) -> str:
        """The topic written in `language`; `fallback` when the prompt's words do not translate."""
        if not self.topic:
            return fallback
        if (cjk_count(self.topic) > 0) == (language == "zh"):
            return self.topic
        if language == "en":
            return " ".join(self.english_words[:MAX_TOPIC_EN_WORDS]) or fallback
        translated = "".join(EN_TO_ZH[w] for w in self.english_words if w in EN_TO_ZH)
        return translated[:MAX_TOPIC_ZH_CHARS] or fallback


@lru_cache(maxsize=1024)
def extract_terms(prompt: str) -> PromptTerms:
    """Keywords, topic and English words of a prompt; Chinese when it contains hanzi."""
    runs = _content_runs_zh(prompt) if cjk_count(prompt) else _content_runs_en(prompt)
    keywords = tuple(dict.fromkeys(word for run in runs for word in run))[:MAX_KEYWORDS]
    joiner = "" if cjk_count(prompt) else " "
    # The subject comes early; of the first few phrases, the longest says the most.
    phrases = [joiner.join(run) for run in runs[:TOPIC_CANDIDATE_PHRASES]]
    topic = max(phrases, key=len, default="")
    topic = " ".join(topic.split()[:MAX_TOPIC_EN_WORDS]) if joiner else topic[:MAX_TOPIC_ZH_CHARS]
    return PromptTerms(keywords, topic, _english_words(keywords))


def _english_words(keywords: tuple[str, ...]) -> tuple[str, ...]:
    words = []
    for word in keywords:
        if cjk_count(word):
            words.extend(ZH_TO_EN.get(word, "").split())
        elif word.isascii():
            words.append(word.lower())
    return tuple(dict.fromkeys(words))


def _content_runs_zh(prompt: str) -> list[list[str]]:
    """Maximal runs of adjacent content words: 新款/智能/手表 stays one phrase."""
    runs: list[list[str]] = [[]]
    pairs = jieba.posseg.lcut(prompt)
    # Single hanzi (人, 拍) are rarely the subject; keep them only when nothing else is left.
    shortest = 1 if all(len(p.word.strip()) <= 1 for p in pairs) else 2
    style_words = _style_alias_positions(prompt)
    position = 0
    for pair in pairs:
        word = pair.word.strip()
        start, position = position, position + len(pair.word)
        is_content = (
            not style_words.intersection(range(start, position))
            and len(word) >= shortest
            and pair.flag.startswith(CONTENT_FLAGS_ZH)
            and word.lower() not in META_WORDS_ZH
            and not word.isdigit()
        )
        if is_content:
            runs[-1].append(word)
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def _style_alias_positions(prompt: str) -> set[int]:
    """Character positions of the Chinese style names in the prompt (赛博朋克风格: the words
    赛博 and 朋克 name a style, not the subject)."""
    taken: set[int] = set()
    for alias in STYLE_ALIASES_ZH:
        start = prompt.find(alias)
        if start != -1:
            taken.update(range(start, start + len(alias)))
    return taken


def _content_runs_en(prompt: str) -> list[list[str]]:
    runs: list[list[str]] = [[]]
    previous_end = 0
    for match in _EN_WORD.finditer(prompt):
        word = match.group().strip("'-")
        if runs[-1] and _PUNCTUATION.search(prompt, previous_end, match.start()):
            runs.append([])
        previous_end = match.end()
        if word and word.lower() not in STOP_WORDS_EN and len(word) > 1:
            runs[-1].append(word)
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]
