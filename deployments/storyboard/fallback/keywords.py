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

from deployments.storyboard.constants import LANGUAGE_SCRIPTS, ScriptLanguage
from deployments.storyboard.content import DATA_DIR, ContentModel, LowerWord, Word, load_file
from deployments.storyboard.fallback.glossary import (
    BY_EN,
    BY_LANGUAGE,
    BY_ZH,
    EN_TO_ZH,
    ZH_TO_EN,
    lookup,
    phrases,
)
from deployments.storyboard.language import cjk_count, hangul_count, kana_count
from deployments.storyboard.languages import LANGUAGES, detect_language
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
_PUNCTUATION = re.compile(r"[^\w\s'’]")
# Style names and aliases in any language: a prompt's "anime" or "cinematic" is no subject.
_STYLE_NAMES = frozenset(name for style in STYLES.values() for name in style.names)


_CJK_WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆ヵヶ\u30a1-\u30fa\u30fc]+")
_HIRAGANA = re.compile(r"[\u3041-\u309f]+")
_LATIN = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")  # grand-mère, gratte-ciel, l'océan
_ELISION = re.compile(r"^(?:[ldjmnstc]|qu)['’]", re.IGNORECASE)  # l'océan, d'été, qu'il


def prompt_language(prompt: str) -> ScriptLanguage:
    """Which language's keyword extraction reads `prompt`: kana → ja, hangul → ko, hanzi → zh
    (whatever else the prompt holds), else the Latin-script language detected."""
    kana, hangul = kana_count(prompt), hangul_count(prompt)
    if kana or hangul:
        return "ja" if kana >= hangul else "ko"
    if cjk_count(prompt):
        return "zh"
    return detect_language(prompt)


@dataclass(frozen=True)
class PromptTerms:
    """The prompt's subject in its language, for narration and for English visual prompts."""

    keywords: tuple[str, ...]  # content words in prompt order, in the prompt's own script
    topic: str  # the longest run of content words: "森林探险", "forest adventure"
    english_words: tuple[str, ...]  # content words usable in an English visual prompt
    language: ScriptLanguage = "en"  # the prompt's (prompt_language)
    topic_words: tuple[str, ...] = ()  # the topic's content words, as the prompt writes them

    def topic_in(self, language: ScriptLanguage, fallback: str) -> str:
        """The topic written in `language`; `fallback` when the prompt's words do not translate."""
        if not self.topic:
            return fallback
        if self.language in ("zh", "en") and language in ("zh", "en"):
            if (cjk_count(self.topic) > 0) == (language == "zh"):
                return self.topic
            if language == "en":
                return " ".join(self.english_words[:MAX_TOPIC_EN_WORDS]) or fallback
            translated = "".join(EN_TO_ZH[w] for w in self.english_words if w in EN_TO_ZH)
            return translated[:MAX_TOPIC_ZH_CHARS] or fallback
        if language == self.language:
            return self.topic
        if language == "en":
            return " ".join(self.english_words[:MAX_TOPIC_EN_WORDS]) or fallback
        return self._translated_topic(language) or fallback

    def _translated_topic(self, language: ScriptLanguage) -> str | None:
        """The topic in `language` through the glossary: each of its (at most two) words must
        have an entry with a word in `language`; two are joined by the language's noun_phrase
        (京都の紅葉 → "hojas de otoño de Kioto"). None when a word does not translate."""
        words = self.topic_words
        if not words or len(words) > 2:
            return None
        translated = []
        for word in words:
            entry = _entry_of(word, self.language)
            target = entry.word(language) if entry is not None else None
            if not target:
                return None
            translated.append(target)
        if len(translated) == 1:
            return translated[0]
        modifier, head = translated if self.language not in HEAD_FIRST else translated[::-1]
        return noun_phrase(modifier, head, language)


# Languages whose noun phrases put the head first (montre connectée, auriculares inalámbricos).
HEAD_FIRST: frozenset[ScriptLanguage] = frozenset({"es", "fr"})
_FRENCH_ELISION = re.compile(r"\b(de|le|la) (?=[aeiouhâàéèêîïôûAEIOUHÂÀÉÈÊÎÏÔÛ])")


def noun_phrase(modifier: str, head: str, language: ScriptLanguage) -> str:
    """Two nouns as one phrase, by the language file's noun_phrase pattern (Kyoto + autumn
    leaves: 京都の紅葉, hojas de otoño de Kioto; French elides: feuilles d'automne d'Osaka)."""
    phrase = LANGUAGES[language].noun_phrase.format(modifier=modifier, head=head)
    return (
        _FRENCH_ELISION.sub(lambda m: m.group(1)[0] + "'", phrase) if language == "fr" else phrase
    )


def _entry_of(word: str, language: ScriptLanguage):  # type: ignore[no-untyped-def]
    """The glossary entry of a prompt word in its language."""
    if language == "zh":
        return BY_ZH.get(word)
    if language == "en":
        return BY_EN.get(word.lower()) or BY_EN.get(word.lower().removesuffix("s"))
    return lookup(word, language)


@lru_cache(maxsize=1024)
def extract_terms(prompt: str) -> PromptTerms:
    """Keywords, topic and English words of a prompt, read in its language (prompt_language):
    jieba for Chinese, stop words for English, script runs for Japanese, particle-stripped words
    for Korean, function and meta words for Spanish, French and German."""
    language = prompt_language(prompt)
    if language not in ("zh", "en"):
        return _other_terms(prompt, language)
    runs = _content_runs_zh(prompt) if cjk_count(prompt) else _content_runs_en(prompt)
    keywords = tuple(dict.fromkeys(word for run in runs for word in run))[:MAX_KEYWORDS]
    joiner = "" if cjk_count(prompt) else " "
    # The subject comes early; of the first few phrases, the longest says the most.
    candidates = runs[:TOPIC_CANDIDATE_PHRASES]
    best = max(candidates, key=lambda run: len(joiner.join(run)), default=[])
    topic = joiner.join(best)
    topic = " ".join(topic.split()[:MAX_TOPIC_EN_WORDS]) if joiner else topic[:MAX_TOPIC_ZH_CHARS]
    return PromptTerms(keywords, topic, _english_words(keywords), language, tuple(best))


def _other_terms(prompt: str, language: ScriptLanguage) -> PromptTerms:
    runs = content_runs(prompt, language)
    keywords = tuple(dict.fromkeys(word for run in runs for word, _ in run))[:MAX_KEYWORDS]
    phrases = []
    for run in runs[:TOPIC_CANDIDATE_PHRASES]:
        if language == "ja":  # 東京の夜景: as written, particles between its words included
            phrases.append((prompt[run[0][1] : run[-1][1] + len(run[-1][0])], run))
        else:
            phrases.append((" ".join(word for word, _ in run[:MAX_TOPIC_EN_WORDS]), run))
    topic, topic_run = max(phrases, key=lambda found: len(found[0]), default=("", []))
    topic = topic[: MAX_TOPIC_ZH_CHARS * 3]
    english = []
    for word in keywords:
        entry = lookup(word, language)
        if entry is not None:
            english.extend(entry.en.split())
        elif is_name(prompt, word, language):
            english.append(word)
    topic_words = _glossary_phrase(prompt, language, [word for word, _ in topic_run])
    return PromptTerms(keywords, topic, tuple(dict.fromkeys(english)), language, topic_words)


def _glossary_phrase(prompt: str, language: ScriptLanguage, words: list[str]) -> tuple[str, ...]:
    """The topic's words, a glossary phrase of several words (fin de semana) as one."""
    lowered = prompt.lower()
    for phrase in phrases(language):
        if any(word.lower() in phrase.split() for word in words) and phrase in lowered:
            return (phrase,)
    return tuple(words)


def is_name(prompt: str, word: str, language: ScriptLanguage) -> bool:
    """A capitalized word inside a sentence names someone or something (Madrid, Lyon) in the
    Latin-script languages but German, which capitalizes every noun."""
    if LANGUAGE_SCRIPTS[language] != "latin" or language == "de" or not word[:1].isupper():
        return False
    start = prompt.find(word)
    before = prompt[:start].rstrip()
    return bool(before) and before[-1] not in ".!?¡¿:"


@lru_cache(maxsize=1024)
def content_runs(prompt: str, language: ScriptLanguage) -> list[list[tuple[str, int]]]:
    """Runs of adjacent content words (word, start) of a ja/ko/es/fr/de prompt: words that are
    neither function nor meta words (data/languages/<code>.yaml) nor style names."""
    lists = LANGUAGES[language].keywords
    dropped = frozenset(lists.function_words) | frozenset(lists.meta_words) | _STYLE_NAMES
    if language == "ja":
        return _runs_ja(prompt, dropped, lists.particles)
    runs: list[list[tuple[str, int]]] = [[]]
    previous_end = 0
    for match in _LATIN.finditer(prompt) if language != "ko" else re.finditer(r"\S+", prompt):
        word, start = match.group(), match.start()
        if language == "ko":
            whole = word.strip(".,!?~…·\"'()[]")
            word = "" if whole in dropped else _korean_stem(whole, lists.particles)
        elif language == "fr":
            word = _ELISION.sub("", word)
        if runs[-1] and _PUNCTUATION.search(prompt, previous_end, match.start()):
            runs.append([])
        previous_end = match.end()
        if word and len(word) > 1 - (language == "ko") and word.lower() not in dropped:
            runs[-1].append((word, start))
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def _korean_stem(word: str, particles: tuple[str, ...]) -> str:
    """An eojeol without its particle ending (숲을 → 숲), unless the glossary knows it whole."""
    if word in BY_LANGUAGE["ko"]:
        return word
    for ending in sorted(particles, key=len, reverse=True):
        if word.endswith(ending) and len(word) > len(ending):
            return word[: -len(ending)]
    return word


def _runs_ja(
    prompt: str, dropped: frozenset[str], particles: tuple[str, ...]
) -> list[list[tuple[str, int]]]:
    """Kanji and katakana words (hiragana is mostly particles and endings): a single kanji
    followed by hiragana that is no particle is a verb or adjective stem (作って, 短い) and
    dropped; words joined by の stay one run (東京の夜景)."""
    runs: list[list[tuple[str, int]]] = [[]]
    position = 0
    for match in re.finditer(f"{_CJK_WORD.pattern}|[A-Za-z][A-Za-z'-]*", prompt):
        between = prompt[position : match.start()]
        position = match.end()
        if runs[-1] and between not in ("", "の"):
            runs.append([])
        word = match.group()
        after = _HIRAGANA.match(prompt, match.end())
        stem = (
            len(word) == 1
            and cjk_count(word)
            and after is not None
            and not after.group().startswith(particles)
        )
        if stem or word.lower() in dropped:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((word, match.start()))
    return [run for run in runs if run]


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
