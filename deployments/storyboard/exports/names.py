"""Download file names from a storyboard's title: a Unicode name for clients that read RFC 6266's
`filename*`, and an ASCII one for those that do not."""

from __future__ import annotations

import re
import unicodedata

MAX_STEM_CHARS = 80
FALLBACK_STEM = "storyboard"
# Characters no file system or shell should see in a name: separators, Windows' reserved ones,
# controls and quotes.
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')


def ascii_file_stem(title: str) -> str:
    """Letters, digits and dashes only: `A Trip to Kyoto!` → `A-Trip-to-Kyoto`."""
    plain = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9]+", "-", plain).strip("-")[:MAX_STEM_CHARS].strip("-")
    return stem or FALLBACK_STEM


def unicode_file_stem(title: str) -> str:
    """The title as written, less what a file name cannot hold: `森林/探险` → `森林-探险`."""
    text = "".join(ch for ch in title if unicodedata.category(ch) not in {"Cf", "Zl", "Zp"})
    stem = _UNSAFE.sub("-", " ".join(text.split()))[:MAX_STEM_CHARS].strip(" .-")
    return stem or ascii_file_stem(title)
