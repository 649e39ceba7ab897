"""Which language a script is written in: the request's choice, or what its prompt is written in."""

from __future__ import annotations

import re
from typing import Literal

from serve_app.protocol import ScriptRequest

ScriptLanguage = Literal["zh", "en"]

_CJK_CHAR = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")


def cjk_count(text: str) -> int:
    return len(_CJK_CHAR.findall(text))


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
