"""Length and scene count a prompt states ("a 45-second teaser", "用5个镜头", "一分钟的宣传片"),
for the request fields it leaves open (issue 17).

`read_hints` reads what the prompt says; `apply_hints` fills `duration_s` / `num_scenes` of a
request that left them None, so the model's prompt and the fallback see the same numbers. The
request's own fields always win. Values outside the request's limits are clamped, with a note
saying what was read and what it became; the notes go back to the client. ja/ko/es/fr/de (30秒,
5개 장면, 30 segundos, 30 Sekunden): hint_words.py, from data/languages/<code>.yaml `hints`.

Only a number with a unit is read: a duration needs 秒/分钟/小时 or seconds/minutes/hours (45s,
45-second, 1分30秒, two-minute, half a minute, 1:30 followed by "long"/"video"/...), a count needs
镜头/场景/分镜/幕 or shots/scenes/cuts. A number in a context that is not the video's length or
scene count is skipped: a walk, a cooking time, an ago/later, a part of the video ("前10秒",
"the last 3 shots"), a per-scene length ("每个镜头5秒", "5 seconds each"), an ordinal ("第3个镜头"),
a decade ("90s-style"), a model name ("iPhone 5s"), a day span ("24 hours in Tokyo"), idioms
("一秒爱上", "十分好看", "5 shots of espresso"). Of several durations (or counts), the first one
marked as the total or the video's length ("总时长", "in total", "30秒的短片", "a 45-second
teaser", "60 seconds long") wins, else the first one. A range ("30-60 seconds")
gives its middle.

Pure Python: no Ray, no FastAPI, nothing from the HTTP side.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from deployments.storyboard import hint_words as words
from deployments.storyboard.constants import (
    MAX_DURATION_S,
    MAX_SCENE_SECONDS,
    MAX_SCENES,
    MIN_DURATION_S,
    MIN_SCENE_SECONDS,
    MIN_SCENES,
)
from deployments.storyboard.lengths import max_scenes_for, min_scenes_for
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.numbers import (
    EN_NUMBER,
    ZH_NUMBER,
    is_article,
    is_zh_one,
    number_value,
    numeral,
)

DURATION_FIELD = "duration_s"
SCENES_FIELD = "num_scenes"
HOURS_PER_DAY = 24  # "24 hours in Tokyo", "48小时": a span of days, not a video's length


@dataclass(frozen=True)
class PromptHints:
    """What a prompt says about the video's length and scene count, within the request limits.

    `notes` say where a stated value was changed (clamped, a range's middle); each starts with the
    field's name. `duration_phrase` / `scenes_phrase` are the words the values were read from.
    """

    duration_s: int | None = None
    num_scenes: int | None = None
    notes: tuple[str, ...] = ()
    duration_phrase: str | None = None
    scenes_phrase: str | None = None


# ---- units -----------------------------------------------------------------------------------

_SEP = r"[ \t]*-?[ \t]*"
_SEC = r"(?:(?:seconds?|secs?|s)(?![a-z'’])|秒钟|秒(?!杀|懂|变|爱|入戏|沦陷|回))"
_MIN = r"(?:(?:minutes?|mins?)(?![a-z])|分钟)"
_HOUR = r"(?:(?:hours?|hrs?|h)(?![a-z])|个?小时|个?钟头)"
_UNIT = rf"{_SEC}|{_MIN}|{_HOUR}"
_RANGE = r"[ \t]*(?:-|–|—|~|～|〜|to|到|至)[ \t]*"

_FLAGS = re.IGNORECASE


def _unit_seconds(unit: str) -> int:
    unit = unit.lower()
    if unit.startswith(("h", "小", "个", "钟")):
        return 3600
    if unit.startswith(("m", "分")):
        return 60
    return 1


# Durations, most specific first: at one position the first pattern that matches wins.
_DURATION_PATTERNS = {
    # 1分30秒, 1 minute 30 seconds, 2 min and 15 s, 1m30s
    "compound": re.compile(
        rf"{numeral('n1')}{_SEP}(?P<u1>{_MIN}|m|分)[ \t]*(?:and[ \t]*|零)?"
        rf"(?P<n2>\d{{1,2}}(?![\d.])|{ZH_NUMBER}|{EN_NUMBER}){_SEP}{_SEC}",
        _FLAGS,
    ),
    # one and a half minutes, 一分半钟, 一个半小时, a minute and a half
    "and_half": re.compile(
        rf"{numeral('n1')}(?:[ \t-]+and[ \t-]+a[ \t-]+half{_SEP}(?P<u1>{_MIN}|{_HOUR})"
        rf"|(?P<u2>分)半钟?|(?P<u3>个)半(?:小时|钟头)"
        rf"|{_SEP}(?P<u4>{_MIN}|{_HOUR})[ \t]+and[ \t]+a[ \t]+half(?![a-z]))",
        _FLAGS,
    ),
    # half a minute, half-minute, 半分钟, half an hour, 半小时
    "half": re.compile(
        r"(?<![a-z])half[ \t-]+(?:a[ \t-]+)?(?P<u1>minute)(?![a-z])"
        r"|(?<!分)半(?P<u2>分钟)"
        r"|(?<![a-z])half[ \t-]+(?:an[ \t-]+)?(?P<u3>hour)(?![a-z])"
        r"|(?<![个分])半个?(?P<u4>小时|钟头)",
        _FLAGS,
    ),
    # 30-60 seconds, 2到3分钟, 15~30s
    "range": re.compile(rf"{numeral('n1')}{_RANGE}{numeral('n2')}{_SEP}(?P<u1>{_UNIT})", _FLAGS),
    # 45 s, 45s, 45-second, 30秒, 一分钟, two-minute, 2 min, an hour
    "simple": re.compile(rf"{numeral('n1')}{_SEP}(?P<u1>{_UNIT})", _FLAGS),
    # 1:30, only when the words around it say it is a length (not a time of day)
    "clock": re.compile(r"(?<![\d:.])(?P<n1>\d{1,2}):(?P<n2>[0-5]\d)(?![\d:])"),
}
_COUNT_ADJECTIVES_EN = (
    "short|quick|brief|key|main|different|distinct|separate|simple|cinematic|fast|slow|little|"
    "big|great|beautiful|stunning|long|major|dramatic|consecutive|continuous|aerial|static|"
    "handheld|drone|tracking|establishing|wide|close-up|close|striking|vivid|clear|distinct"
)
_COUNT_ADJECTIVES_ZH = (
    "不同的?|关键的?|主要的?|简短的?|精彩的?|连续的?|独立的?|快速的?|核心的?|精美的?|唯美的?"
    "|短的?|小的?"
)
_COUNT_PATTERNS = {
    "single": re.compile(
        r"一镜到底|一个镜头到底"
        r"|(?<![a-z])(?:(?:a|one)[ \t]+single|one)[ \t]+continuous[ \t]+(?:shot|take)(?![a-z])"
        r"|(?<![a-z])(?:a|one)[ \t]+single[ \t]+(?:shot|take)(?![a-z])"
        r"|(?<![a-z])(?:in[ \t]+)?one[ \t]+take(?![a-z])",
        _FLAGS,
    ),
    "en": re.compile(
        rf"{numeral('n1')}(?:{_RANGE}{numeral('n2')})?{_SEP}(?:(?:{_COUNT_ADJECTIVES_EN})[ \t]+)?"
        r"(?P<u1>shots?|scenes?|cuts?)(?![a-z])",
        _FLAGS,
    ),
    "zh": re.compile(
        rf"{numeral('n1')}(?:{_RANGE}{numeral('n2')})?[ \t]*"
        rf"(?:(?:个|组|段)?(?:{_COUNT_ADJECTIVES_ZH})?(?P<u1>镜头|场景|分镜头?)|(?P<u2>幕)|场(?P<u3>戏))",
        _FLAGS,
    ),
}

_DURATION_PATTERNS |= words.language_duration_patterns()  # ja, ko, es, fr, de
_COUNT_PATTERNS |= words.language_count_patterns()

# ---- contexts --------------------------------------------------------------------------------

_WINDOW = 40  # characters of context read on each side of a number

_EN_NOT_LENGTH_BEFORE = re.compile(
    r"(?<![a-z])(?:walk|walking|drive|driving|ride|riding|flight|fly|flying|bake|baking|boil|"
    r"boiling|cook|cooking|simmer|simmering|fry|frying|roast|roasting|steep|steeping|brew|"
    r"brewing|rest|resting|marinate|marinating|stew|stewing|grill|grilling|microwave|run|running|"
    r"hold|holding|sleep|sleeping|train|training|practice|practicing|meditate|meditating|first|"
    r"last|final|opening|closing|every|each|per|took|spent|spend|spends|spending|wait|waits|"
    r"waited|waiting|after|remaining|other|next|previous|countdown|timer|lasts?|lasting|"
    r"standby|charges?|charging)"
    r"(?:\W+(?:for|another|about|around|roughly|approximately|over|just|only))*\W*$",
    _FLAGS,
)
_EN_NOT_LENGTH_AFTER = re.compile(
    r"^(?:[ \t]*/[ \t]*[^\d\s]|[ \t,]*(?:walk|walking|drive|driving|ride|flight|away|from|ago|"
    r"later|earlier|before|after|each|apiece|per|into|left|"
    r"of[ \t]+(?:walking|driving|cooking|baking|boiling)|"
    r"by[ \t]+(?:car|train|bus|foot|subway|metro|bike)|on[ \t]+foot|"
    r"(?:of[ \t]+)?(?:battery|playback|playtime|standby|charge|charging))(?![a-z]))",
    _FLAGS,
)
# Words right before a number (fillers such as 了/约 aside) that make it not the video's length.
_ZH_NOT_LENGTH_BEFORE = (
    "步行", "走路", "开车", "驾车", "车程", "骑行", "骑车", "坐车", "地铁", "高铁", "飞行", "距离",
    "煮", "炖", "烤", "蒸", "炒", "焖", "腌", "泡", "煎", "炸", "熬", "发酵", "醒发", "冷藏",
    "冷冻", "静置", "等待", "前", "前面", "最后", "结尾", "开头", "第", "倒计时", "排队", "续航",
    "待机", "保温", "保冷", "充电", "充满",
)  # fmt: skip
# Past tense, read before the fillers go: 花了3小时, 等了10分钟, 睡了8小时.
_ZH_NOT_LENGTH_BEFORE_PAST = ("花了", "用了", "等了", "睡了", "跑了", "练了", "走了", "坐了")
# Dishes that end like a cooking verb: 烧烤30秒的短视频 is about barbecue, not a cooking time.
_ZH_DISHES = ("烧烤", "炭烤", "小炒", "爆炒", "清蒸", "油炸", "香煎", "铁板烧", "泡泡")
# 离地铁站5分钟, 距离市中心半小时: how far a place is (not 近距离, 零距离, 离开)
_ZH_DISTANCE_BEFORE = re.compile(r"(?<![近远零距])(?:距离|离)(?!开|别)[^，。,.；;！!？?\s]{0,8}$")
_ZH_PER_SCENE = ("每",)  # 每个镜头5秒, 每段3秒: a scene's length, not the video's
_ZH_NOT_LENGTH_AFTER = re.compile(
    r"^[ \t]*(?:以?后|之后|後|以?前|之前|的?路程|的?车程|的?步行|/[ \t]*[^\d\s])"
)
# Bare "s" (90s, 1990s, iPhone 5s): a decade or a model name, not seconds.
_DECADE_BEFORE = re.compile(
    r"(?:(?<![a-z])(?:the|early|late|mid|my|your|his|her|their|our)|['’‘])[ \t-]*$", _FLAGS
)
_DECADE_AFTER = re.compile(
    r"^[ \t-]*(?:of|style|vibes?|retro|aesthetic|music|pop|hip[ -]hop|fashion|nostalgia|era|kids?|"
    r"vintage|look|feel|theme|movies?|anime|songs?|hits|rock|disco|tv|cartoons?|年代|风|复古)"
    r"(?![a-z])",
    _FLAGS,
)
_MODEL_NAME_BEFORE = re.compile(
    r"(?<![a-z])(?:iphone|ipad|ipod|galaxy|pixel|moto|xperia|redmi|honor|nova|mate|series|"
    r"model|gen|version)[ \t]*$",
    _FLAGS,
)
_CLOCK_LENGTH_AFTER = re.compile(
    r"^[ \t]*-?[ \t]*(?:long|mins?|minutes|video|clip|spot|ad|promo|teaser|trailer|film|reel|"
    r"version|cut|commercial|montage|short|vlog|的?视频|短片|长|的?时长|宣传片|广告)",
    _FLAGS,
)
_CLOCK_LENGTH_BEFORE = re.compile(
    r"(?:duration|length|runtime|run time|时长|长度|总长|片长)[ \t]*(?:[:：=]|of|is|为|是)?"
    r"[ \t]*(?:about|around|约|大约)?[ \t]*$",
    _FLAGS,
)
_CLOCK_TIME_AFTER = re.compile(r"^[ \t]*(?:[ap]\.?m\b|o'clock)", _FLAGS)

_EN_NOT_COUNT_BEFORE = re.compile(
    r"(?<![a-z])(?:first|last|final|opening|closing|other|another|remaining|next|previous|hit|hits|made|"
    r"makes|took|takes|sank|sinks|missed|misses|scored|scores|blocked|fired|fires)\W*$",
    _FLAGS,
)
_EN_NOT_COUNT_AFTER = re.compile(
    r"^[ \t]*(?:of[ \t]+(?:espresso|tequila|vodka|whiske?y|rum|gin|liquor|alcohol|coffee|sake|"
    r"soju|baijiu|vaccine)|in[ \t]+a[ \t]+row|on[ \t]+(?:goal|target|net)|per[ \t]+"
    r"(?:game|match|minute))(?![a-z])",
    _FLAGS,
)
_ZH_NOT_COUNT_BEFORE = (
    "第", "最后", "最後", "结尾", "末尾", "开头", "开场", "其中", "另", "另外", "每",
)  # fmt: skip
_ZH_NOT_COUNT_BEFORE_EXACT = ("前", "后", "後", "后面", "前面")  # not 然后, 随后, 最后 (above)
_ZH_ONE_COUNT_BEFORE = ("用", "只用", "仅用", "只有", "仅", "只", "共", "一共", "总共")
_ZH_ONE_COUNT_AFTER = re.compile(r"^[ \t]*(?:到底|拍完|完成|讲完|讲述|呈现|展示)")

_TOTAL_BEFORE = re.compile(
    r"(?:total|overall|altogether|in all|总时长|总长度?|总共|一共|共|全片|整体|总)[ \t:：]*"
    r"(?:of|is|为|是)?[ \t]*$",
    _FLAGS,
)
_TOTAL_AFTER = re.compile(r"^[ \t]*(?:in[ \t]+total|total|overall|altogether|in all)", _FLAGS)
# Words that say a duration is the video's length: "30秒的短片", "a 45-second travel teaser",
# "60 seconds long", "剪成30秒", "时长大概一分钟", "under a minute".
_LENGTH_BEFORE = re.compile(
    r"(?:length|duration|runtime|run time|lasting|(?:cut|trim|trimmed|edit|edited)[ \t]+"
    r"(?:it[ \t]+)?(?:down[ \t]+)?to|under|within|no[ \t]+(?:longer|more)[ \t]+than|at[ \t]+most|"
    r"时长|长度|片长|做成|剪成|剪辑成|控制在|压缩到|压缩成|缩短到|不超过|最多)"
    r"[ \t:：]*(?:of|is|为|是|约|大约|大概|在)?[ \t]*$",
    _FLAGS,
)
_LENGTH_AFTER = re.compile(
    r"^[ \t]*(?:long(?![a-z])|of[ \t]+footage"
    r"|(?:左右|以内|之内|内|上下|长)?的?(?:短?视频|短片|片子|影片|广告|宣传片|预告片?|片头|片尾|vlog|动画"
    r"|纪录片|微电影|mv|快剪|混剪|版本?)"
    r"|(?:[a-z]+[ \t]+)?(?:video|clip|ad|advert|commercial|spot|teaser|trailer|promo|reel|film|"
    r"short|recap|explainer|documentary|doc|vlog|version|cut|tiktok|story|animation|montage|"
    r"intro|loop|sizzle)(?![a-z]))",
    _FLAGS,
)
_HYPHENATED_UNIT = re.compile(r"-[ \t]*[a-z]+$", _FLAGS)
_WORD_AFTER = re.compile(r" [a-z]", _FLAGS)
_PER_SCENE_BEFORE = re.compile(r"(?:[×*]|(?<![a-z])x)[ \t]*$", _FLAGS)  # 6 scenes × 5 s


@dataclass(frozen=True)
class _Reading:
    kind: Literal["duration", "count"]
    start: int
    end: int
    value: float  # seconds or scenes, as stated (a range's middle)
    is_range: bool
    is_marked: bool  # said to be the total (durations: or the video's length)


def _before(text: str, start: int) -> str:
    return text[max(0, start - _WINDOW) : start]


def _after(text: str, end: int) -> str:
    return text[end : end + _WINDOW]


def _zh_before_ends_with(before: str, words: tuple[str, ...]) -> bool:
    stripped = before.rstrip(" \t的")
    return any(stripped.endswith(word) for word in words)


def _zh_before_contains(before: str, words: tuple[str, ...], chars: int = 5) -> bool:
    tail = before.rstrip(" \t")[-chars:]
    return any(word in tail for word in words)


def _zh_not_length_before(before: str) -> bool:
    stripped = re.sub(r"(?:大约|大概|将近|差不多|足足|整整|了|上|约|个|[ \t])+$", "", before)
    return (
        (stripped.endswith(_ZH_NOT_LENGTH_BEFORE) and not stripped.endswith(_ZH_DISHES))
        or before.rstrip(" \t").endswith(_ZH_NOT_LENGTH_BEFORE_PAST)
        or _zh_before_contains(before, _ZH_PER_SCENE)
        or bool(_ZH_DISTANCE_BEFORE.search(before))
    )


def _is_marked(kind: str, text: str, start: int, end: int) -> bool:
    before, after = _before(text, start), _after(text, end)
    if _TOTAL_BEFORE.search(before) or _TOTAL_AFTER.match(after):
        return True
    if words.language_total(before, after):
        return True
    if kind != "duration":
        return False
    # "a 45-second teaser", "a 30-second recipe": a hyphenated length describes the video
    hyphenated = _HYPHENATED_UNIT.search(text, start, end) and _WORD_AFTER.match(after)
    return bool(hyphenated or _LENGTH_BEFORE.search(before) or _LENGTH_AFTER.match(after))


def _duration_value(kind: str, match: re.Match[str]) -> tuple[float, bool] | None:
    """(seconds, is a range) of a duration match; None when it is not a duration."""
    groups = match.groupdict()
    n1 = groups.get("n1")
    if kind.startswith("lang_"):
        return words.language_duration(kind, groups)
    if kind == "half":
        return (30.0 if groups["u1"] or groups["u2"] else 1800.0), False
    if kind == "clock":
        return float(int(groups["n1"]) * 60 + int(groups["n2"])), False
    if kind == "compound":
        if is_article(groups["n2"]):
            return None
        return number_value(n1) * 60 + number_value(groups["n2"]), False
    if kind == "and_half":
        unit = groups["u1"] or groups["u4"]
        if unit is not None:
            return (number_value(n1) + 0.5) * _unit_seconds(unit), False
        return (number_value(n1) + 0.5) * (60 if groups["u2"] else 3600), False
    unit = groups["u1"]
    seconds = _unit_seconds(unit)
    if (is_article(n1) or (kind == "range" and is_article(groups["n2"]))) and seconds == 1:
        return None  # "a second video", "a 30-second ..."
    if kind == "range":
        low, high = number_value(n1), number_value(groups["n2"])
        if high <= low:
            return None
        return (low + high) / 2 * seconds, True
    return number_value(n1) * seconds, False


def _duration_context_ok(kind: str, text: str, match: re.Match[str]) -> bool:
    start, end = match.span()
    if kind.startswith("lang_") and not words.language_context_ok(text, start, end):
        return False
    before, after = _before(text, start), _after(text, end)
    if kind == "clock":
        if _CLOCK_TIME_AFTER.match(after):
            return False
        if not (_CLOCK_LENGTH_AFTER.match(after) or _CLOCK_LENGTH_BEFORE.search(before)):
            return False
    if _EN_NOT_LENGTH_BEFORE.search(before) or _EN_NOT_LENGTH_AFTER.match(after):
        return False
    if _PER_SCENE_BEFORE.search(before):
        return False
    if _zh_not_length_before(before) or _ZH_NOT_LENGTH_AFTER.match(after):
        return False
    unit = (match.groupdict().get("u1") or "").lower()
    if unit == "s" and kind in ("simple", "range"):
        number = match.group("n1")
        if not number[0].isdigit() or float(number) >= 1000:
            return False  # "five s", "1990s", "1000s of"
        decade = float(number) in range(10, 100, 10)
        if decade and (_DECADE_BEFORE.search(before) or _DECADE_AFTER.match(after)):
            return False
        if _MODEL_NAME_BEFORE.search(before):
            return False
    if kind in ("simple", "range") and _unit_seconds(unit) == 3600:
        hours = number_value(match.groupdict().get("n2") or match.group("n1"))
        if hours >= HOURS_PER_DAY and hours % HOURS_PER_DAY == 0:
            return False
    return True


def _count_value(kind: str, match: re.Match[str], text: str) -> tuple[float, bool] | None:
    if kind == "single":
        return 1.0, False
    if kind.startswith("lang_"):
        return words.language_count(match.group("n1"))
    n1, n2 = match.group("n1"), match.group("n2")
    if is_article(n1) or (n2 is not None and is_article(n2)):
        return None  # "a scene where ..."
    low = number_value(n1)
    if n2 is None:
        if low != int(low):
            return None
        if is_zh_one(n1):
            # 一个镜头 is mostly "a shot"; it is a count only when the prompt insists on it.
            before = _before(text, match.start())
            if not (
                _zh_before_ends_with(before, _ZH_ONE_COUNT_BEFORE)
                or _ZH_ONE_COUNT_AFTER.match(_after(text, match.end()))
            ):
                return None
        return low, False
    high = number_value(n2)
    if high <= low or low != int(low) or high != int(high):
        return None
    return (low + high) / 2, True


def _count_context_ok(text: str, match: re.Match[str]) -> bool:
    start, end = match.span()
    if not words.language_context_ok(text, start, end):
        return False
    before, after = _before(text, start), _after(text, end)
    if _EN_NOT_COUNT_BEFORE.search(before) or _EN_NOT_COUNT_AFTER.match(after):
        return False
    if _zh_before_ends_with(before, _ZH_NOT_COUNT_BEFORE):
        return False
    stripped = before.rstrip(" \t的")
    return not (
        any(stripped.endswith(word) for word in _ZH_NOT_COUNT_BEFORE_EXACT)
        and not stripped.endswith(("然后", "随后", "之后", "而后"))
    )


def _leftmost_longest(found: list[tuple[re.Match[str], _Reading | None]]) -> list[_Reading]:
    """Readings of the matches that do not overlap an earlier (or, at one start, a longer) one.
    A match whose context says it is not the video's (None: a walk, a decade) still hides the
    shorter matches inside it."""
    ordered = sorted(found, key=lambda item: (item[0].start(), -item[0].end()))
    readings: list[_Reading] = []
    end = -1
    for match, reading in ordered:
        if match.start() < end:
            continue
        end = match.end()
        if reading is not None:
            readings.append(reading)
    return readings


def _reading(
    kind: Literal["duration", "count"],
    text: str,
    match: re.Match[str],
    value: tuple[float, bool],
    context_ok: bool,
) -> _Reading | None:
    if not context_ok:
        return None
    start, end = match.span()
    return _Reading(kind, start, end, value[0], value[1], _is_marked(kind, text, start, end))


def _readings(text: str) -> list[_Reading]:
    """Every duration and count stated in `text`, in order."""
    found: list[tuple[re.Match[str], _Reading | None]] = []
    for kind, pattern in words.applicable(_DURATION_PATTERNS, text):
        for match in pattern.finditer(text):
            if (value := _duration_value(kind, match)) is not None:
                ok = _duration_context_ok(kind, text, match)
                found.append((match, _reading("duration", text, match, value, ok)))
    readings = _leftmost_longest(found)
    found = []
    for kind, pattern in words.applicable(_COUNT_PATTERNS, text):
        for match in pattern.finditer(text):
            if (value := _count_value(kind, match, text)) is not None:
                ok = _count_context_ok(text, match)
                found.append((match, _reading("count", text, match, value, ok)))
    return readings + _leftmost_longest(found)


def _pick(readings: list[_Reading], kind: str) -> _Reading | None:
    """The first reading marked as the total (or the video's length), else the first one."""
    of_kind = [r for r in readings if r.kind == kind]
    marked = [r for r in of_kind if r.is_marked]
    return (marked or of_kind or [None])[0]


def _round(value: float) -> int:
    return math.floor(value + 0.5)


def _show(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _settle(
    field: str, phrase: str, reading: _Reading, low: int, high: int, unit: str
) -> tuple[int, str | None]:
    """The reading's value within [low, high], and a note when it was not taken as stated."""
    value = reading.value
    stated = f"{_show(value)}{unit}"
    if reading.is_range:
        prefix = f'{field}: "{phrase}" is a range whose middle, {stated}, is'
        plain = f'{field}: "{phrase}" is a range; using its middle, {_round(value)}'
    else:
        prefix = f'{field}: "{phrase}" is {stated},'
        plain = None
    if value < low:
        return low, f"{prefix} under the {low}{unit} minimum; using {low}"
    if value > high:
        return high, f"{prefix} over the {high}{unit} maximum; using {high}"
    return min(high, max(low, _round(value))), plain


@lru_cache(maxsize=1024)
def read_hints(prompt: str) -> PromptHints:
    """The video length and scene count `prompt` states, each None when it states none."""
    text = unicodedata.normalize("NFKC", prompt)
    readings = _readings(text)
    notes: list[str] = []
    duration = scenes = duration_phrase = scenes_phrase = None
    if (reading := _pick(readings, "duration")) is not None:
        duration_phrase = text[reading.start : reading.end]
        duration, note = _settle(
            DURATION_FIELD, duration_phrase, reading, MIN_DURATION_S, MAX_DURATION_S, " s"
        )
        notes += [note] if note else []
    if (reading := _pick(readings, "count")) is not None:
        scenes_phrase = text[reading.start : reading.end]
        scenes, note = _settle(SCENES_FIELD, scenes_phrase, reading, MIN_SCENES, MAX_SCENES, "")
        notes += [note] if note else []
    return PromptHints(duration, scenes, tuple(notes), duration_phrase, scenes_phrase)


def apply_hints(request: ScriptRequest) -> tuple[ScriptRequest, tuple[str, ...]]:
    """`request` with the duration and scene count its prompt states filled in where it left them
    None, and notes on what was read. Fields the request sets win, without a note.

    When the two together cannot make a storyboard (scenes of MIN_SCENE_SECONDS to
    MAX_SCENE_SECONDS each), the value read from the prompt gives way: the count, or, when the
    request set the count, the duration.
    """
    hints = read_hints(request.prompt)
    notes: list[str] = []
    update: dict[str, int] = {}
    for field, value, phrase in (
        (DURATION_FIELD, hints.duration_s, hints.duration_phrase),
        (SCENES_FIELD, hints.num_scenes, hints.scenes_phrase),
    ):
        if value is None or getattr(request, field) is not None:
            continue
        update[field] = value
        own = [note for note in hints.notes if note.startswith(f"{field}:")]
        notes += own or [f'{field}: {value} read from the prompt ("{phrase}")']

    duration = update.get(DURATION_FIELD, request.duration_s)
    scenes = update.get(SCENES_FIELD, request.num_scenes)
    if duration is not None and scenes is not None:
        if SCENES_FIELD in update:
            fitted = _fit_scenes(duration, scenes)
            if fitted != scenes:
                update[SCENES_FIELD] = fitted
                notes.append(_scenes_fit_note(duration, scenes, fitted))
        elif DURATION_FIELD in update:
            fitted = _fit_duration(duration, scenes)
            if fitted != duration:
                update[DURATION_FIELD] = fitted
                notes.append(_duration_fit_note(duration, scenes, fitted))
    if not update:
        return request, tuple(notes)
    return request.model_copy(update=update), tuple(notes)


def _fit_scenes(duration: int, scenes: int) -> int:
    return max(min_scenes_for(duration), min(max_scenes_for(duration), scenes))


def _fit_duration(duration: int, scenes: int) -> int:
    low = max(MIN_DURATION_S, scenes * MIN_SCENE_SECONDS)
    high = min(MAX_DURATION_S, scenes * MAX_SCENE_SECONDS)
    return max(low, min(high, duration))


def _scenes_fit_note(duration: int, scenes: int, fitted: int) -> str:
    if fitted < scenes:
        return (
            f"{SCENES_FIELD}: {scenes} scenes do not fit in {duration} s "
            f"(at least {MIN_SCENE_SECONDS} s a scene); using {fitted}"
        )
    return (
        f"{SCENES_FIELD}: {scenes} scenes cannot fill {duration} s "
        f"(at most {MAX_SCENE_SECONDS} s a scene); using {fitted}"
    )


def _duration_fit_note(duration: int, scenes: int, fitted: int) -> str:
    if fitted < duration:
        return (
            f"{DURATION_FIELD}: {duration} s is more than the requested {scenes} scenes can fill "
            f"(at most {MAX_SCENE_SECONDS} s a scene); using {fitted}"
        )
    return (
        f"{DURATION_FIELD}: {duration} s is too short for the requested {scenes} scenes "
        f"(at least {MIN_SCENE_SECONDS} s a scene); using {fitted}"
    )
