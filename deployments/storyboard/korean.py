"""Korean particles that depend on the word before them (을/를, 이/가, 은/는, 과/와, 으로/로,
이랑/랑): a template writes one form after a slot, and the word the slot takes decides which is
right. The rule is the final consonant (batchim) of the word's last syllable: 교토로, 서울로,
부산으로; 고양이를, 숲을. Pure Python, no dictionary: a hangul syllable encodes its final
consonant (U+AC00 + (initial × 21 + medial) × 28 + final), and digits are read Sino-Korean.
"""

from __future__ import annotations

import re

_FIRST_SYLLABLE, _LAST_SYLLABLE = 0xAC00, 0xD7A3
_FINALS = 28
RIEUL = 8  # ㄹ as a final: 으로 after it is 로 (서울로, 교실로)
# Sino-Korean readings of the digits: 영 일 이 삼 사 오 육 칠 팔 구 (0 none, 8 ㄹ, else other).
_DIGIT_FINALS = {"0": 21, "1": RIEUL, "2": 0, "3": 16, "4": 0, "5": 0, "6": 1, "7": RIEUL}
_DIGIT_FINALS |= {"8": RIEUL, "9": 0}
# (after a final consonant, after a vowel): the forms a template may write after a slot.
PARTICLE_PAIRS: tuple[tuple[str, str], ...] = (
    ("으로", "로"),
    ("이랑", "랑"),
    ("을", "를"),
    ("이", "가"),
    ("은", "는"),
    ("과", "와"),
)
_FORMS = sorted({form for pair in PARTICLE_PAIRS for form in pair}, key=len, reverse=True)
# A particle right after the slot, then anything but another hangul syllable (이 눈에, 로.).
PARTICLE_AFTER_SLOT = re.compile(f"^({'|'.join(_FORMS)})(?![\\uac00-\\ud7a3])")


def final_consonant(word: str) -> int | None:
    """The final consonant of `word`'s last syllable (0: none, 8: ㄹ, other: another), None
    when the word does not end in a hangul syllable or a digit (a Latin name: unknown)."""
    stripped = word.rstrip(" )]\"'」』")
    if not stripped:
        return None
    last = stripped[-1]
    if _FIRST_SYLLABLE <= ord(last) <= _LAST_SYLLABLE:
        return (ord(last) - _FIRST_SYLLABLE) % _FINALS
    return _DIGIT_FINALS.get(last)


def particle_for(word: str, particle: str) -> str:
    """The form of `particle` (either form of its pair) that follows `word`; `particle` as
    given when it is no pair's form or the word's ending is unknown."""
    final = final_consonant(word)
    pair = next((p for p in PARTICLE_PAIRS if particle in p), None)
    if pair is None or final is None:
        return particle
    if pair[0] == "으로":
        return "으로" if final not in (0, RIEUL) else "로"
    return pair[0] if final else pair[1]


def attach_particle(word: str, following: str) -> str:
    """`following` (the template text right after a slot filled with `word`) with a leading
    particle in the form `word` takes."""
    match = PARTICLE_AFTER_SLOT.match(following)
    if match is None:
        return following
    return particle_for(word, match.group(1)) + following[match.end() :]


def either_form(particle: str) -> tuple[str, ...]:
    """Both forms of `particle`'s pair (the forms a filled slot may be followed by)."""
    return next((pair for pair in PARTICLE_PAIRS if particle in pair), (particle,))
