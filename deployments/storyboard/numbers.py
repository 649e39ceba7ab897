"""Numbers as people write them in prompts: digits, Chinese numerals (一 … 九十九, 百, 两) and
English number words (one … ninety-nine, "a/one hundred and …"), as regular-expression pieces and
their values. Used by hints.py to read a video's length and scene count."""

from __future__ import annotations

import re

_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_ZH_DIGITS |= {"六": 6, "七": 7, "八": 8, "九": 9}
_ZH_MULTIPLIERS = {"十": 10, "百": 100, "千": 1000}
_ZH_NUMERAL_CHARS = "".join(_ZH_DIGITS) + "".join(_ZH_MULTIPLIERS)

_EN_ONES = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_EN_TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
_EN_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_EN_VALUES = {word: i for i, word in enumerate(_EN_ONES, start=1)}
_EN_VALUES |= {word: i for i, word in enumerate(_EN_TEENS.split(), start=10)}
_EN_VALUES |= {word: 10 * i for i, word in enumerate(_EN_TENS, start=2)}
_EN_VALUES |= {"a": 1, "an": 1, "zero": 0}


def _alternatives(words: list[str]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


_ZH_D = "[一二两三四五六七八九]"
ZH_NUMBER = (
    rf"(?<![几数{_ZH_NUMERAL_CHARS}])"
    rf"(?:{_ZH_D}?百(?:零?{_ZH_D}(?:十{_ZH_D}?)?|{_ZH_D}?十{_ZH_D}?)?|{_ZH_D}?十{_ZH_D}?|{_ZH_D})"
)
_EN_SMALL = (
    rf"(?:(?:{_alternatives(_EN_TENS)})(?:[ -](?:{_alternatives(_EN_ONES)}))?"
    rf"|{_alternatives(_EN_ONES + _EN_TEENS.split() + ['zero'])})"
)
EN_NUMBER = (
    rf"(?<![a-z])(?:(?:{_EN_SMALL}|a)[ -]hundred(?:[ -](?:and[ -])?{_EN_SMALL})?|{_EN_SMALL}|an?)"
    r"(?![a-z])"
)
_DIGITS = r"(?<![a-z\d.])\d{1,6}(?:\.\d{1,3})?(?![\d])"
_NUM = rf"(?:{_DIGITS}|{ZH_NUMBER}|{EN_NUMBER})"


def numeral(name: str) -> str:
    return rf"(?P<{name}>{_NUM})"


def number_value(token: str) -> float:
    token = token.lower()
    if token[0].isdigit():
        return float(token)
    if token[0] in _ZH_NUMERAL_CHARS:
        total, digit = 0, None
        for char in token:
            if char in _ZH_DIGITS:
                digit = _ZH_DIGITS[char]
            else:
                total += (1 if digit is None else digit) * _ZH_MULTIPLIERS[char]
                digit = None
        return float(total + (digit or 0))
    total = current = 0
    for word in re.split(r"[ -]+", token):
        if word == "hundred":
            current = (current or 1) * 100
        elif word != "and":
            current += _EN_VALUES[word]
    return float(total + current)


def is_article(token: str) -> bool:
    return token.lower() in ("a", "an")


def is_zh_one(token: str) -> bool:
    return token == "一"
