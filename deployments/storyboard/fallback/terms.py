"""The prompt's keywords with the kind of thing each names (a place, a food, a product, ...), so
each fills only template slots of its kind, and the subject: the word the video is about.

The lexicon (data/glossary.yaml) decides first; otherwise jieba's part of speech (ns place, nr
person, t season, v activity) for Chinese, and for English a capitalized word is a name, an -ing
word an activity. Anything else is an object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import jieba.posseg

from deployments.storyboard.constants import LANGUAGE_SCRIPTS, ScriptLanguage, TermKind
from deployments.storyboard.fallback.glossary import BY_EN, BY_ZH, Entry, head_of, lookup, phrases
from deployments.storyboard.fallback.keywords import (
    CONTENT_FLAGS_ZH,
    META_WORDS_ZH,
    STOP_WORDS_EN,
    STYLE_ALIASES_ZH,
    content_runs,
    is_name,
    prompt_language,
)
from deployments.storyboard.language import cjk_count

MAX_TERMS = 12
MAX_PHRASE_WORDS = 3
_LEXICON_ZH = sorted(BY_ZH, key=len, reverse=True)  # longest first: 降噪耳机 before 耳机
_EN_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_PUNCTUATION = re.compile(r"[^\w\s]")
_SENTENCE_END = re.compile(r"[.!?:;。！？：；]\s*$")
# English writes these without an article: "during autumn", "thanks to friendship", "hiking".
_BARE_KINDS = ("activity", "season", "theme")
# jieba's tags that say a word's kind; other verbs (包括, 到) are no subject of anything.
_KIND_OF_FLAG: tuple[tuple[str, TermKind], ...] = (
    ("ns", "place"),
    ("nr", "person"),
    ("t", "season"),
    ("vn", "activity"),
)


@dataclass(frozen=True)
class Term:
    zh: str | None  # as a Chinese line writes it; None when unknown
    en: str | None  # as an English line writes it (lower case unless a name); None when unknown
    kind: TermKind
    name: bool = False  # a proper name: no article in English, kept as is in Chinese lines
    # The word in the other script languages (ja, ko, es, fr, de) where known: (language, word).
    others: tuple[tuple[str, str], ...] = ()

    @property
    def untyped(self) -> bool:
        """A word of a prompt in another language than zh/en that the lexicon does not know."""
        return self.zh is None and self.en is None and bool(self.others)

    def written(self, language: ScriptLanguage) -> str | None:
        """The word in `language`, or None when the lexicon cannot say it there (a name is
        written as it is)."""
        if language not in ("zh", "en"):
            word = dict(self.others).get(language)
            if word is None and self.name and LANGUAGE_SCRIPTS[language] == "latin":
                return self.en
            return word
        word = self.zh if language == "zh" else self.en
        if word is None and self.name:
            return self.en or self.zh if language == "zh" else None
        return word

    def in_sentence(self, language: ScriptLanguage) -> str | None:
        """The word as a slot writes it in a sentence: English common nouns take "the"; the
        other languages write the word as the prompt (or the lexicon) does."""
        word = self.written(language)
        if word is None or language != "en" or self.name or self.kind in _BARE_KINDS:
            return word
        return f"the {word}"


@lru_cache(maxsize=1024)
def typed_terms(prompt: str) -> tuple[Term, ...]:
    """The prompt's content words with their kinds, in prompt order, without repeats."""
    language = prompt_language(prompt)
    if language not in ("zh", "en"):
        found = _terms_other(prompt, language)
    else:
        found = _terms_zh(prompt) if cjk_count(prompt) else _terms_en(prompt)
    unique = list(dict.fromkeys(found))
    return tuple(unique[:MAX_TERMS])


# When a prompt has no word of the genre's subject kind, the nearest kind that reads right in
# the same sentences: an explainer about a thing, a story about an animal, a product the lexicon
# does not know (an unknown English phrase is an object).
SUBJECT_STAND_INS: dict[TermKind, tuple[TermKind, ...]] = {
    "theme": ("object",),
    "object": ("theme",),
    "person": ("creature",),
    "product": ("object",),
    "activity": ("person",),
}


def subject_of(terms: tuple[Term, ...], kind: TermKind) -> Term | None:
    """The word the video is about: of the genre's subject kind (a name first: "Chengdu" over
    "city"), else of a kind that stands in for it."""
    for wanted in (kind, *SUBJECT_STAND_INS.get(kind, ())):
        matching = [term for term in terms if term.kind == wanted]
        if matching:
            return next((term for term in matching if term.name), matching[0])
    # A ja/ko/es/fr/de word the lexicon does not know has no kind we can tell: the first may be
    # the subject of any genre (ラーメン屋 for food, Schwarzwald for nature).
    return next((term for term in terms if term.untyped), None)


# Slots a word of unknown kind (Term.untyped) may fill: the concrete nouns' ones, where a word
# of another kind reads least wrong (parque, Bauernhof, 夜景 are places or things to film).
UNTYPED_SLOTS: tuple[TermKind, ...] = ("object", "place")


def of_kind(terms: tuple[Term, ...], kind: TermKind) -> list[Term]:
    """The terms a `{kind|...}` slot takes: those of its kind, and for the concrete nouns' slots
    the words of unknown kind too."""
    return [t for t in terms if t.kind == kind or (t.untyped and kind in UNTYPED_SLOTS)]


def _from_entry(
    entry: Entry,
    kind: TermKind | None = None,
    written: tuple[ScriptLanguage, str] | None = None,
) -> Term:
    """The entry as a term, with its words in every language the glossary has; `written` is
    the prompt's own (language, word), which its language's lines keep as the prompt wrote it."""
    name = entry.en[:1].isupper() or entry.en.startswith("the ")  # Kyoto, the Bund
    resolved = entry.kind or kind or ("place" if name else "object")
    others = entry.others()
    if written is not None:
        others = (written, *(pair for pair in others if pair[0] != written[0]))
    return Term(entry.zh, entry.en, resolved, name=name, others=others)


def _kind_of_flag(flag: str) -> TermKind | None:
    return next((kind for prefix, kind in _KIND_OF_FLAG if flag.startswith(prefix)), None)


@lru_cache(maxsize=4096)
def _kind_of_word_zh(word: str) -> TermKind | None:
    """What jieba's tagger makes of a lexicon word with no kind of its own."""
    pairs = jieba.posseg.lcut(word)
    return _kind_of_flag(pairs[-1].flag) if pairs else None


def _terms_zh(prompt: str) -> list[Term]:
    """Lexicon words first (longest match), then jieba's content words in the gaps."""
    spans: list[tuple[int, int, Term]] = []
    taken = [False] * len(prompt)
    for alias in STYLE_ALIASES_ZH:  # 赛博朋克 names a style: neither 赛博 nor 朋克 is a subject
        start = prompt.find(alias)
        if start != -1:
            taken[start : start + len(alias)] = [True] * len(alias)
    for word in _LEXICON_ZH:
        start = prompt.find(word)
        while start != -1:
            end = start + len(word)
            if not any(taken[start:end]):
                entry = BY_ZH[word]
                kind = None if entry.kind else _kind_of_word_zh(word)
                if word not in META_WORDS_ZH:  # 旅行 says what the video is, not what it shows
                    spans.append((start, end, _from_entry(entry, kind)))
                taken[start:end] = [True] * (end - start)
            start = prompt.find(word, end)
    position = 0
    for pair in jieba.posseg.lcut(prompt):
        start, end = position, position + len(pair.word)
        position = end
        word = pair.word.strip()
        if (
            any(taken[start:end])
            or len(word) < 2
            or word.isdigit()
            or word.lower() in META_WORDS_ZH
        ):
            continue
        if not cjk_count(word):
            if pair.flag == "eng" and word.lower() not in STOP_WORDS_EN:
                spans.append((start, end, Term(None, word, "object", name=True)))  # 关于AI的视频
            continue
        kind = _kind_of_flag(pair.flag)
        if kind is None and not pair.flag.startswith(CONTENT_FLAGS_ZH):
            continue
        named = pair.flag.startswith(("ns", "nr"))
        spans.append((start, end, Term(word, None, kind or "object", name=named)))
    return [term for _, _, term in sorted(spans, key=lambda span: span[0])]


def _terms_en(prompt: str) -> list[Term]:
    """Lexicon phrases of up to three words first, then the other content words; adjacent
    unknown words form one phrase (stop words and punctuation end it)."""
    matches = list(_EN_WORD.finditer(prompt))
    terms: list[Term] = []
    phrase: list[Term] = []  # unknown plain words since the last boundary
    i = 0
    while i < len(matches):
        if i and _PUNCTUATION.search(prompt, matches[i - 1].end(), matches[i].start()):
            terms += _phrase(phrase)
            phrase = []
        for size in range(min(MAX_PHRASE_WORDS, len(matches) - i), 0, -1):
            entry = _lexicon_en(" ".join(m.group().strip("'-") for m in matches[i : i + size]))
            if entry is not None:
                term = _from_entry(entry)
                if phrase and not term.name:  # "lost" + umbrella: the words describe it
                    modifiers = " ".join(w.en for w in phrase[-(MAX_PHRASE_WORDS - 1) :])  # type: ignore[misc]
                    term = Term(term.zh, f"{modifiers} {term.en}", term.kind)
                    phrase = []
                terms += [*_phrase(phrase), term]
                phrase = []
                i += size
                break
        else:
            word = matches[i].group().strip("'-")
            sentence_start = _starts_sentence(prompt, matches[i].start())
            i += 1
            if len(word) <= 1 or word.lower() in STOP_WORDS_EN:
                terms += _phrase(phrase)
                phrase = []
                continue
            term = _unknown_en(word, sentence_start)
            if _is_plain_object(term):
                phrase.append(term)
            else:
                terms += [*_phrase(phrase), term]
                phrase = []
    return terms + _phrase(phrase)


def _terms_other(prompt: str, language: ScriptLanguage) -> list[Term]:
    """The content words of a ja/ko/es/fr/de prompt: the glossary's kind and translations where
    its column for the language has the word (inflected forms and phrases of several words
    included; a Japanese or German compound takes its head's), a name (place) for a capitalized
    word inside a sentence, else an object of unknown kind."""
    terms = []
    spaced = LANGUAGE_SCRIPTS[language] in ("latin", "hangul")
    spans = _phrase_spans(prompt, language) if spaced else []
    emitted: set[int] = set()
    for run in content_runs(prompt, language):
        phrase: list[str] = []  # adjacent unknown words: one thing (montre connectée)
        for word, start in run:
            span = next((i for i, (s, e, _) in enumerate(spans) if s <= start < e), None)
            if span is not None:
                if span not in emitted:
                    emitted.add(span)
                    text = prompt[spans[span][0] : spans[span][1]]
                    found = _from_entry(spans[span][2], "object", (language, text))
                    terms += [*_untyped_phrase(phrase, language), found]
                    phrase = []
                continue
            entry = lookup(word, language)
            head = head_of(word, language) if entry is None else None
            if entry is not None:
                found = _from_entry(entry, "object", (language, _common(word, entry, language)))
            elif head is not None:  # 市民ランナー: a kind of runner, written as the prompt does
                term = _from_entry(head, "object", (language, word))
                found = Term(term.zh, term.en, term.kind, False, term.others)
            elif is_name(prompt, word, language):
                found = Term(None, word, "place", True, ((language, word),))
            elif spaced:
                phrase.append(word)
                continue
            else:
                found = Term(None, None, "object", False, ((language, word),))
            terms += [*_untyped_phrase(phrase, language), found]
            phrase = []
        terms += _untyped_phrase(phrase, language)
    return terms


def _common(word: str, entry: Entry, language: ScriptLanguage) -> str:
    """A Spanish or French common noun as a line writes it mid-sentence: "Viaje" at the start
    of a prompt is "viaje" (names and German nouns keep their capital)."""
    if language in ("es", "fr") and not entry.en[:1].isupper():
        return word.lower()
    return word


def _phrase_spans(prompt: str, language: ScriptLanguage) -> list[tuple[int, int, Entry]]:
    """(start, end, entry) of the glossary's phrases of several words in the prompt (fin de
    semana, auriculares inalámbricos, 비 오는 날), longest first, not overlapping."""
    lowered = prompt.lower()
    spans: list[tuple[int, int, Entry]] = []
    for text in phrases(language):
        for match in re.finditer(rf"(?<!\w){re.escape(text)}(?:s|es|n|en)?(?!\w)", lowered):
            start, end = match.span()
            if all(end <= s or start >= e for s, e, _ in spans):
                spans.append((start, end, lookup(text, language)))  # type: ignore[arg-type]
    return spans


def _untyped_phrase(words: list[str], language: ScriptLanguage) -> list[Term]:
    if not words:
        return []
    text = " ".join(words[-MAX_PHRASE_WORDS:])
    return [Term(None, None, "object", False, ((language, text),))]


def _phrase(words: list[Term]) -> list[Term]:
    """Adjacent unknown English words as one object, its last word the head ("lost umbrella",
    not an object called "lost"); at most MAX_PHRASE_WORDS of them."""
    if not words:
        return []
    text = " ".join(term.en for term in words[-MAX_PHRASE_WORDS:])  # type: ignore[misc]
    return [Term(None, text, "object")]


def _is_plain_object(term: Term) -> bool:
    return term.kind == "object" and term.zh is None and not term.name and term.en is not None


def _lexicon_en(phrase: str) -> Entry | None:
    lowered = phrase.lower()
    if lowered in STOP_WORDS_EN:
        return None
    for candidate in (lowered, lowered.removesuffix("s"), lowered + "s"):
        if candidate in BY_EN:
            return BY_EN[candidate]
    return None


def _unknown_en(word: str, sentence_start: bool) -> Term:
    if word[:1].isupper() and not sentence_start:
        return Term(None, word, "place", name=True)
    lowered = word.lower()
    kind: TermKind = "activity" if lowered.endswith("ing") and len(lowered) > 5 else "object"
    return Term(None, lowered, kind)


def _starts_sentence(text: str, position: int) -> bool:
    before = text[:position].rstrip()
    return not before or bool(_SENTENCE_END.search(before))
