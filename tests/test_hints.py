"""Length and scene count read from the prompt (issue 17, item 3): storyboard/hints.py."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from deployments.storyboard.constants import (
    MAX_DURATION_S,
    MAX_SCENE_SECONDS,
    MAX_SCENES,
    MIN_DURATION_S,
    MIN_SCENE_SECONDS,
    MIN_SCENES,
)
from deployments.storyboard.hints import PromptHints, apply_hints, read_hints
from deployments.storyboard.language import has_visible_text
from deployments.storyboard.lengths import scene_length_problem
from deployments.storyboard.models import ScriptRequest

# (prompt, duration_s, num_scenes): what a person reads in it.
STATED = [
    # the examples
    ("A 45-second travel teaser", 45, None),
    ("make it 45 s", 45, None),
    ("a 45s clip", 45, None),
    ("30秒的广告", 30, None),
    ("一分钟的宣传片", 60, None),
    ("1分30秒的短片", 90, None),
    ("a two-minute explainer", 120, None),
    ("in 5 shots", None, 5),
    ("5个镜头", None, 5),
    ("五个场景", None, 5),
    # more durations
    ("三十秒", 30, None),
    ("十五秒的片头", 15, None),
    ("四十五秒", 45, None),
    ("二十秒钟", 20, None),
    ("九十秒", 90, None),
    ("一百二十秒", 120, None),
    ("百秒挑战", 100, None),
    ("两分钟", 120, None),
    ("1分钟30秒", 90, None),
    ("一分半钟", 90, None),
    ("两分半", 150, None),
    ("半分钟", 30, None),
    ("half a minute", 30, None),
    ("a half-minute spot", 30, None),
    ("a minute-long video", 60, None),
    ("under a minute", 60, None),
    ("a minute and a half", 90, None),
    ("one and a half minutes", 90, None),
    ("1.5分钟", 90, None),
    ("1.5 minutes", 90, None),
    ("a 90-second ad", 90, None),
    ("2 min", 120, None),
    ("2mins", 120, None),
    ("10 sec", 10, None),
    ("20 secs", 20, None),
    ("thirty seconds", 30, None),
    ("forty-five seconds", 45, None),
    ("sixty seconds", 60, None),
    ("ninety-second recap", 90, None),
    ("1 minute 30 seconds", 90, None),
    ("2 minutes and 15 seconds", 135, None),
    ("1m30s", 90, None),
    ("a 1:30 video", 90, None),
    ("1:30 long", 90, None),
    ("duration: 1:30", 90, None),
    ("３０秒", 30, None),  # full-width digits
    ("explain it in 30s", 30, None),
    ("30s的产品广告", 30, None),
    ("总时长60秒", 60, None),
    ("近距离拍摄30秒", 30, None),
    ("烧烤30秒的短视频", 30, None),
    ("烟花30秒", 30, None),
    ("火锅、串串等30秒的视频", 30, None),
    # more counts
    ("用5个镜头讲述", None, 5),
    ("three-shot sequence", None, 3),
    ("5 scenes", None, 5),
    ("five scenes", None, 5),
    ("6 cuts", None, 6),
    ("5 quick shots", None, 5),
    ("两个场景", None, 2),
    ("十个镜头", None, 10),
    ("8个分镜", None, 8),
    ("三幕", None, 3),
    ("三场戏", None, 3),
    ("4个不同的场景", None, 4),
    ("一镜到底", None, 1),
    ("只用一个镜头", None, 1),
    ("a single continuous shot", None, 1),
    ("in one take", None, 1),
    ("然后5个镜头展示细节", None, 5),
    # both
    ("A 30-second ad in 5 shots", 30, 5),
    ("用6个镜头做一个一分钟的视频", 60, 6),
    # the first stated wins, unless a later one is marked as the total
    ("a 15-second or 30-second version", 15, None),
    ("每个镜头5秒，共30秒", 30, None),
    ("5个镜头，每个10秒", None, 5),
    ("the first 3 shots are close-ups, 6 scenes in total", None, 6),
    ("a 10-minute walk from the hotel, filmed as a 30-second ad", 30, None),
    ("cook pasta in 10 minutes, 30-second recipe", 30, None),  # the video's length wins
    ("1小时的直播切片剪成30秒", 30, None),
    ("我想做一个短视频，包括傍晚的长城，时长大概一分钟", 60, None),
    ("a 15s/30s cutdown", 15, None),
    ("6 scenes × 5 s", None, 6),
]

# Numbers that are not the video's length or scene count.
NOT_STATED = [
    "30岁的程序员",
    "2024年的年度总结",
    "5 tips for better sleep",
    "top 10 beaches",
    "iPhone 15 review",
    "a 10 km run",
    "iPhone 5s unboxing",
    "90s-style music video",
    "life in the 1990s",
    "a vlog about life in your 20s",
    "a latte with 2 shots of espresso",
    "a 10-minute walk from the station",
    "5 minutes from the beach",
    "30 minutes later, he wakes up",
    "the first 10 seconds show the logo",
    "boil for 10 minutes",
    "第5个镜头要特写",
    "最后一个镜头是logo",
    "前三个镜头",
    "一秒爱上成都",
    "十分好看",
    "考了90分",
    "24 hours in Tokyo",
    "48小时玩转香港",
    "炖了2小时的红烧肉",
    "小火慢炖2小时",
    "花了3小时爬上山顶",
    "步行约10分钟就到",
    "离地铁站5分钟的咖啡馆",
    "十分钟后他醒了",
    "每个镜头5秒",
    "5 seconds each",
    "下午3:30的阳光",
    "meet at 1:30 pm",
    "a second video about cats",
    "一个镜头",
    "a scene where a dog runs",
    "几十秒",
    "he hit 10 shots in a row",
    "another 2 scenes",
    "一款保温杯，保温12小时",
    "a phone with 30-hour battery life",
    "5 min/km pace",
    "7 days in Bali",
]


@pytest.mark.parametrize(("prompt", "duration", "scenes"), STATED)
def test_reads_what_the_prompt_states(prompt, duration, scenes):
    hints = read_hints(prompt)
    assert (hints.duration_s, hints.num_scenes) == (duration, scenes)
    assert hints.notes == ()


@pytest.mark.parametrize("prompt", NOT_STATED)
def test_ignores_numbers_that_are_not_a_length_or_count(prompt):
    assert read_hints(prompt) == PromptHints()


def test_the_phrase_read_is_kept():
    hints = read_hints("A 45-second travel teaser for Kyoto in 5 shots")
    assert (hints.duration_phrase, hints.scenes_phrase) == ("45-second", "5 shots")


# (prompt, duration_s, num_scenes, notes): values outside the limits clamp, with a note.
CLAMPED = [
    (
        "一小时的纪录片",
        MAX_DURATION_S,
        None,
        ['duration_s: "一小时" is 3600 s, over the 300 s maximum; using 300'],
    ),
    (
        "an hour-long documentary",
        MAX_DURATION_S,
        None,
        ['duration_s: "an hour" is 3600 s, over the 300 s maximum; using 300'],
    ),
    (
        "两个小时",
        MAX_DURATION_S,
        None,
        ['duration_s: "两个小时" is 7200 s, over the 300 s maximum; using 300'],
    ),
    (
        "half an hour",
        MAX_DURATION_S,
        None,
        ['duration_s: "half an hour" is 1800 s, over the 300 s maximum; using 300'],
    ),
    (
        "一个半小时",
        MAX_DURATION_S,
        None,
        ['duration_s: "一个半小时" is 5400 s, over the 300 s maximum; using 300'],
    ),
    (
        "a 10-minute film",
        MAX_DURATION_S,
        None,
        ['duration_s: "10-minute" is 600 s, over the 300 s maximum; using 300'],
    ),
    (
        "2 seconds",
        MIN_DURATION_S,
        None,
        ['duration_s: "2 seconds" is 2 s, under the 5 s minimum; using 5'],
    ),
    (
        "一秒钟",
        MIN_DURATION_S,
        None,
        ['duration_s: "一秒钟" is 1 s, under the 5 s minimum; using 5'],
    ),
    (
        "2.5 seconds",
        MIN_DURATION_S,
        None,
        ['duration_s: "2.5 seconds" is 2.5 s, under the 5 s minimum; using 5'],
    ),
    (
        "50 shots",
        None,
        MAX_SCENES,
        ['num_scenes: "50 shots" is 50, over the 20 maximum; using 20'],
    ),
    (
        "三十个镜头",
        None,
        MAX_SCENES,
        ['num_scenes: "三十个镜头" is 30, over the 20 maximum; using 20'],
    ),
    ("0 shots", None, MIN_SCENES, ['num_scenes: "0 shots" is 0, under the 1 minimum; using 1']),
    (
        "30-60 seconds",
        45,
        None,
        ['duration_s: "30-60 seconds" is a range; using its middle, 45'],
    ),
    ("2到3分钟", 150, None, ['duration_s: "2到3分钟" is a range; using its middle, 150']),
    ("3-5 shots", None, 4, ['num_scenes: "3-5 shots" is a range; using its middle, 4']),
    (
        "5-10 minutes",
        MAX_DURATION_S,
        None,
        [
            'duration_s: "5-10 minutes" is a range whose middle, 450 s, is over the 300 s '
            "maximum; using 300"
        ],
    ),
    (
        "a 2-hour movie in 40 scenes",
        MAX_DURATION_S,
        MAX_SCENES,
        [
            'duration_s: "2-hour" is 7200 s, over the 300 s maximum; using 300',
            'num_scenes: "40 scenes" is 40, over the 20 maximum; using 20',
        ],
    ),
]


@pytest.mark.parametrize(("prompt", "duration", "scenes", "notes"), CLAMPED)
def test_out_of_range_values_clamp_with_a_note(prompt, duration, scenes, notes):
    hints = read_hints(prompt)
    assert (hints.duration_s, hints.num_scenes) == (duration, scenes)
    assert list(hints.notes) == notes


# The example prompts (tests/data/genre_prompts.json), whole.
WHOLE_PROMPTS = [
    (
        "A 45-second travel teaser for Kyoto in autumn: temples, maple leaves, tea ceremony",
        45,
        None,
    ),
    ("拍一个成都街头美食的探店vlog，要有火锅和夜市", None, None),
    ("用5个镜头讲述咖啡的制作过程", None, 5),
    ("做一个一分钟的城市宣传片", 60, None),
    ("为一款新的降噪耳机做30秒的产品广告", 30, None),
    ("A 20-second teaser for a running shoe", 20, None),
    ("A documentary about honeybees", None, None),
    ("足球比赛的最后一分钟绝杀", None, None),
    ("Backpacking through Patagonia, a 2-minute trip recap", 120, None),
    ("带你玩转西安古城，三天两夜攻略", None, None),
    ("My 5am morning routine vlog", None, None),
]


@pytest.mark.parametrize(("prompt", "duration", "scenes"), WHOLE_PROMPTS)
def test_whole_prompts(prompt, duration, scenes):
    hints = read_hints(prompt)
    assert (hints.duration_s, hints.num_scenes) == (duration, scenes)


# ---- apply_hints -----------------------------------------------------------------------------


def test_fills_open_fields_with_a_note():
    request = ScriptRequest(prompt="A 45-second travel teaser for Kyoto in 5 shots")
    filled, notes = apply_hints(request)
    assert (filled.duration_s, filled.num_scenes) == (45, 5)
    assert notes == (
        'duration_s: 45 read from the prompt ("45-second")',
        'num_scenes: 5 read from the prompt ("5 shots")',
    )
    assert filled.prompt == request.prompt
    assert request.duration_s is None  # the request itself is not changed


def test_keeps_the_other_fields():
    request = ScriptRequest(
        prompt="30秒的产品广告", language="en", style="cinematic", system_prompt="你是导演"
    )
    filled, _ = apply_hints(request)
    assert filled.model_dump() == {**request.model_dump(), "duration_s": 30}
    assert ScriptRequest.model_validate(filled.model_dump()) == filled


def test_a_clamped_value_gets_only_its_clamp_note():
    filled, notes = apply_hints(ScriptRequest(prompt="一小时的纪录片"))
    assert filled.duration_s == MAX_DURATION_S
    assert notes == ('duration_s: "一小时" is 3600 s, over the 300 s maximum; using 300',)


def test_nothing_stated_changes_nothing():
    request = ScriptRequest(prompt="A documentary about honeybees")
    filled, notes = apply_hints(request)
    assert filled == request
    assert notes == ()


@pytest.mark.parametrize(
    ("prompt", "explicit", "expected"),
    [
        # explicit fields win, silently, whether the prompt agrees or not
        ("A 45-second teaser in 5 shots", {"duration_s": 20}, {"duration_s": 20, "num_scenes": 5}),
        ("A 45-second teaser in 5 shots", {"num_scenes": 3}, {"duration_s": 45, "num_scenes": 3}),
        ("A 45-second teaser in 5 shots", {"duration_s": 45, "num_scenes": 5}, {}),
        ("一小时的纪录片", {"duration_s": 60}, {"duration_s": 60}),
        ("50 shots", {"num_scenes": 7}, {"num_scenes": 7}),
    ],
)
def test_explicit_fields_win(prompt, explicit, expected):
    filled, notes = apply_hints(ScriptRequest(prompt=prompt, **explicit))
    for field, value in expected.items():
        assert getattr(filled, field) == value
    for field in explicit:
        assert not any(note.startswith(f"{field}:") for note in notes), notes


def test_both_explicit_is_the_request_itself():
    request = ScriptRequest(prompt="一小时，50个镜头", duration_s=30, num_scenes=4)
    assert apply_hints(request) == (request, ())


@pytest.mark.parametrize(
    ("prompt", "explicit", "duration", "scenes", "fit_note"),
    [
        (
            "20 scenes in 5 seconds",
            {},
            5,
            5,
            "num_scenes: 20 scenes do not fit in 5 s (at least 1 s a scene); using 5",
        ),
        (
            "a five-minute film in 2 shots",
            {},
            300,
            5,
            "num_scenes: 2 scenes cannot fill 300 s (at most 60 s a scene); using 5",
        ),
        (
            "用20个镜头",
            {"duration_s": 10},
            10,
            10,
            "num_scenes: 20 scenes do not fit in 10 s (at least 1 s a scene); using 10",
        ),
        (
            "in 2 shots",
            {"duration_s": 300},
            300,
            5,
            "num_scenes: 2 scenes cannot fill 300 s (at most 60 s a scene); using 5",
        ),
        (
            "五分钟的片子",
            {"num_scenes": 2},
            120,
            2,
            "duration_s: 300 s is more than the requested 2 scenes can fill "
            "(at most 60 s a scene); using 120",
        ),
        (
            "a 5-second clip",
            {"num_scenes": 20},
            20,
            20,
            "duration_s: 5 s is too short for the requested 20 scenes "
            "(at least 1 s a scene); using 20",
        ),
    ],
)
def test_an_impossible_pair_gives_way(prompt, explicit, duration, scenes, fit_note):
    filled, notes = apply_hints(ScriptRequest(prompt=prompt, **explicit))
    assert (filled.duration_s, filled.num_scenes) == (duration, scenes)
    assert notes[-1] == fit_note
    assert MIN_SCENE_SECONDS <= duration / scenes <= MAX_SCENE_SECONDS


# ---- properties ------------------------------------------------------------------------------

FRAGMENTS = [
    "30", "5", "0", "1.5", "999999", "１２", "一", "两", "十五", "四十五", "百", "九十九", "a",
    "an",
    "twenty-five", "forty five", "one hundred and ten", "half", "and a half", "s", "sec", "seconds",
    "-second", "min", "minutes", "-minute", "hour", "h", "秒", "秒钟", "分", "分钟", "分半", "小时",
    "个半小时", "半", "个", "镜头", "场景", "幕", "shots", "scenes", "cuts", "-", "~", "到", "to",
    ":", "1:30", "long", "video", "每个", "第", "前", "最后", "walk", "in total", "共", " ", "，",
    "the", "iPhone", "of espresso", "'", "90s", "年",
]  # fmt: skip
prompt_text = st.text(max_size=200) | st.lists(
    st.sampled_from(FRAGMENTS) | st.text(max_size=3), max_size=30
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompt_text)
def test_read_hints_never_raises_and_stays_in_range(prompt):
    hints = read_hints(prompt)
    assert hints.duration_s is None or MIN_DURATION_S <= hints.duration_s <= MAX_DURATION_S
    assert hints.num_scenes is None or MIN_SCENES <= hints.num_scenes <= MAX_SCENES
    assert (hints.duration_phrase is None) == (hints.duration_s is None)
    assert (hints.scenes_phrase is None) == (hints.num_scenes is None)
    assert all(note.startswith(("duration_s: ", "num_scenes: ")) for note in hints.notes)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prompt_text.filter(has_visible_text),
    st.none() | st.integers(MIN_DURATION_S, MAX_DURATION_S),
    st.none() | st.integers(MIN_SCENES, MAX_SCENES),
)
def test_apply_hints_gives_a_valid_request(prompt, duration, scenes):
    """Hints never turn a request that can be met into one that cannot."""
    if duration is not None and scenes is not None:
        assume(scene_length_problem(duration, scenes) is None)
    request = ScriptRequest(prompt=prompt, duration_s=duration, num_scenes=scenes)
    filled, notes = apply_hints(request)
    assert ScriptRequest.model_validate(filled.model_dump()) == filled
    if duration is not None:
        assert filled.duration_s == duration
    if scenes is not None:
        assert filled.num_scenes == scenes
    read_from_prompt = (filled.duration_s, filled.num_scenes) != (duration, scenes)
    if read_from_prompt and filled.duration_s and filled.num_scenes:
        assert MIN_SCENE_SECONDS <= filled.duration_s / filled.num_scenes <= MAX_SCENE_SECONDS
    assert bool(notes) == read_from_prompt
