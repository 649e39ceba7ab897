"""Which language a script is written in, and how text is measured: the one definition of a
Chinese character, of visible text and of a token estimate that every path uses."""

from __future__ import annotations

import math
import re
import unicodedata
from typing import TYPE_CHECKING

from deployments.storyboard.constants import ScriptLanguage

if TYPE_CHECKING:
    from deployments.storyboard.models import ScriptRequest

# Chinese characters (CJK Unified Ideographs, Extension A, Compatibility Ideographs): what makes
# a prompt Chinese and what an English visual prompt must not contain.
_CJK_CHAR = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Hiragana, katakana (with the prolonged sound mark and half-width forms): only Japanese has them.
_KANA_CHAR = re.compile(r"[\u3041-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
# Hangul syllables and jamo: only Korean has them.
_HANGUL_CHAR = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")
CHARACTERS_PER_ASCII_TOKEN = 4  # about one English word
_ASCII_RUN = re.compile(r"[\x00-\x7f]+")
_ALNUM = re.compile(r"[A-Za-z0-9]")
# Characters ChatGLM3's vocabulary (Chinese and English) likely holds whole, one token each:
# hanzi, CJK and general punctuation, full-width forms. Any other non-ASCII character may fall
# back to one token per UTF-8 byte (2,000 Devanagari characters are ~6,000 tokens).
_ONE_TOKEN_CHAR = re.compile(
    r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef\u2000-\u206f]"
)

# Explicit bidi embeddings, overrides and isolates: they only reorder how text is shown, so a
# prompt can read one way to a person and another to the model. Removed from request text.
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_BIDI_CONTROL = re.compile(f"[{BIDI_CONTROLS}]")
# Characters that draw nothing: controls and format characters (zero-width space and joiners,
# word joiner, BOM, bidi controls), separators, unassigned and private code points, combining
# marks with no base, and letters that render blank (Hangul fillers, the blank Braille cell).
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Me"})
_BLANK_CHARACTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
NO_VISIBLE_TEXT = "has no visible text (only spaces, control, zero-width or bidi characters)"


def cjk_count(text: str) -> int:
    """Chinese characters in `text`."""
    return len(_CJK_CHAR.findall(text))


def kana_count(text: str) -> int:
    """Hiragana and katakana in `text`."""
    return len(_KANA_CHAR.findall(text))


def hangul_count(text: str) -> int:
    """Hangul syllables and letters in `text`."""
    return len(_HANGUL_CHAR.findall(text))


def east_asian_count(text: str) -> int:
    """Hanzi/kanji, kana and hangul: the letters no English visual prompt may hold."""
    return cjk_count(text) + kana_count(text) + hangul_count(text)


def is_visible(char: str) -> bool:
    return char not in _BLANK_CHARACTERS and unicodedata.category(char) not in _INVISIBLE_CATEGORIES


def has_visible_text(text: str) -> bool:
    return any(is_visible(char) for char in text)


def visible_request_text(text: str) -> str:
    """Request text as the service keeps it: bidi controls removed, ends stripped. ValueError
    (NO_VISIBLE_TEXT) when nothing visible is left. Zero-width joiners and spaces stay: Hindi,
    Persian and emoji sequences need them, and they cannot reorder what a reader sees."""
    kept = _BIDI_CONTROL.sub("", text).strip()
    if not has_visible_text(kept):
        raise ValueError(NO_VISIBLE_TEXT)
    return kept


def estimated_tokens(text: str) -> int:
    """A conservative estimate of ChatGLM3's token count without its tokenizer: one token per
    4 characters of a run of ASCII with a letter or digit in it, one per character of a run of
    only spaces and punctuation (between words of other scripts nothing merges with them), one
    per hanzi or CJK punctuation mark (its tokenizer needs about 0.7–1), and one per UTF-8 byte
    for any other character, which a byte-fallback tokenizer may split into bytes."""
    tokens = 0
    for run in _ASCII_RUN.findall(text):
        if _ALNUM.search(run):
            tokens += math.ceil(len(run) / CHARACTERS_PER_ASCII_TOKEN)
        else:
            tokens += len(run)
    for char in _ASCII_RUN.sub("", text):
        if _ONE_TOKEN_CHAR.match(char):
            tokens += 1
        else:
            tokens += len(char.encode("utf-8", "surrogatepass"))
    return tokens


def detect_language(text: str) -> ScriptLanguage:
    """The language of `text` among SCRIPT_LANGUAGES (storyboard.languages.detect_language): by
    script for zh/ja/ko, by function words for the Latin-script ones."""
    from deployments.storyboard.languages import detect_language as detect  # data-driven

    return detect(text)


def resolve_language(request: ScriptRequest) -> ScriptLanguage:
    """The request's explicit language, or the prompt's when it asks for auto."""
    if request.language == "auto":
        return detect_language(request.prompt)
    return request.language
