"""Which language a script is written in, and how text is measured: the one definition of a
Chinese character and of a wide (East Asian) character that every path uses."""

from __future__ import annotations

import re
import unicodedata

from deployments.storyboard.constants import ScriptLanguage
from deployments.storyboard.models import ScriptRequest

# Chinese characters (CJK Unified Ideographs, Extension A, Compatibility Ideographs): what makes
# a prompt Chinese and what an English visual prompt must not contain.
_CJK_CHAR = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")
# East Asian Width "W"/"F": hanzi, kana, hangul, full-width forms. Each is about one token.
_WIDE = ("W", "F")
CHARACTERS_PER_NARROW_TOKEN = 4  # about one English word


def cjk_count(text: str) -> int:
    """Chinese characters in `text`."""
    return len(_CJK_CHAR.findall(text))


def estimated_tokens(text: str) -> int:
    """A cheap upper-side estimate of ChatGLM3's token count without a tokenizer: one token per
    wide character (its tokenizer needs about 0.7–1 per hanzi), one per 4 other characters."""
    wide = sum(1 for char in text if unicodedata.east_asian_width(char) in _WIDE)
    narrow = len(text) - wide
    return wide + -(-narrow // CHARACTERS_PER_NARROW_TOKEN)


def detect_language(text: str) -> ScriptLanguage:
    """zh when Chinese characters outnumber English words (one hanzi ≈ one word of meaning).

    "关于AI的视频" is Chinese, "A video about 北京" is English; text with neither is English.
    """
    hanzi = cjk_count(text)
    return "zh" if hanzi and hanzi >= len(_LATIN_WORD.findall(text)) else "en"


def resolve_language(request: ScriptRequest) -> ScriptLanguage:
    """The request's explicit language, or the prompt's when it asks for auto."""
    if request.language == "auto":
        return detect_language(request.prompt)
    return request.language
