"""Typed slots in the food, product, travel and city genres (issue 17): each prompt gets the genre
it asks for, every slot is filled with its default or a prompt word of its own kind (no more
"探店被切成均匀的片", "成都上桌", "产品广告在转台上缓缓旋转"), and the subject reaches the text and
the English visual prompts."""

from __future__ import annotations

import re

import pytest

from deployments.storyboard.fallback import build_fallback_script
from deployments.storyboard.fallback.builder import choose_genre
from deployments.storyboard.fallback.library import GENRES, Genre
from deployments.storyboard.language import cjk_count
from deployments.storyboard.models import ScriptRequest, VideoScript
from deployments.storyboard.quality import slot_misfits

# prompt, genre, the subject as a Chinese script writes it, as an English script writes it
CASES = [
    ("拍一个成都街头美食的探店vlog，要有火锅和夜市", "food", "火锅", "hotpot"),
    ("用5个镜头讲述咖啡的制作过程", "food", "咖啡", "coffee"),
    ("Homemade ramen recipe", "food", "拉面", "ramen"),
    ("为一款新的降噪耳机做30秒的产品广告", "product", "降噪耳机", "headphones"),
    ("A 20-second teaser for a running shoe", "product", "跑鞋", "running shoe"),
    ("新款智能手表发布", "product", "手表", "watch"),
    ("做一个一分钟的城市宣传片", "city", "城市", "city"),
    (
        "A 45-second travel teaser for Kyoto in autumn: temples, maple leaves, tea ceremony",
        "travel",
        "京都",
        "Kyoto",
    ),
]
# "A city promo for Chengdu" types both city and Chengdu as places; the subject is the name.
CHENGDU = ("A city promo for Chengdu", "city", "成都", "Chengdu")
GENRE_PROMPTS = [
    *[(prompt, genre) for prompt, genre, _, _ in CASES],
    (CHENGDU[0], "city"),
    ("成都城市形象片", "city"),
    ("为成都拍一部城市宣传片", "city"),
    ("Chengdu city branding film", "city"),
    ("京都秋天的旅行预告：寺庙、枫叶、茶道", "travel"),
    ("Our summer trip to Bali", "travel"),
    ("How coffee is made", "food"),
    ("Tokyo street food at night", "food"),
    ("一款无线降噪耳机的广告", "product"),
]
LANGUAGES = ["zh", "en"]


def by_name(name: str) -> Genre:
    return next(genre for genre in GENRES if genre.name == name)


def full_arc(genre: str) -> int:
    """A scene count that plays every beat of the genre once (no repeated beats)."""
    return len(by_name(genre).development) + 3


@pytest.mark.parametrize(("prompt", "genre"), GENRE_PROMPTS)
def test_the_prompt_gets_its_genre(prompt: str, genre: str):
    assert choose_genre(prompt).name == genre


def check_slots(prompt: str, script: VideoScript) -> None:
    assert slot_misfits(ScriptRequest(prompt=prompt), script) == []


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("prompt", "genre", "zh", "en"), [*CASES, CHENGDU])
def test_every_slot_takes_a_word_of_its_kind(prompt: str, genre: str, zh: str, en: str,
                                             language: str):  # fmt: skip
    for scenes in (None, full_arc(genre)):
        request = ScriptRequest(prompt=prompt, language=language, num_scenes=scenes)
        check_slots(prompt, build_fallback_script(request))


def whole_text(script: VideoScript) -> str:
    lines = [script.title]
    for scene in script.scenes:
        lines += [scene.description, scene.action, scene.narration]
    return " ".join(lines)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("prompt", "genre", "zh", "en"), CASES)
def test_the_subject_is_named_in_the_script_and_in_every_visual(prompt: str, genre: str, zh: str,
                                                               en: str, language: str):  # fmt: skip
    script = build_fallback_script(ScriptRequest(prompt=prompt, language=language))
    text = whole_text(script)
    assert (zh if language == "zh" else en.lower()) in (text if language == "zh" else text.lower())
    for scene in script.scenes:
        assert en.lower() in scene.visual_prompt.lower(), scene.visual_prompt
    if language == "en":
        assert not cjk_count(text)
        assert not re.search(r"\b(the|a|an) (the|a|an)\b", text, flags=re.IGNORECASE), text


def test_a_city_promo_names_the_city():
    test_the_subject_is_named_in_the_script_and_in_every_visual(*CHENGDU, "en")


@pytest.mark.parametrize(
    ("prompt", "never"),
    [
        ("拍一个成都街头美食的探店vlog，要有火锅和夜市",
         ["刀起刀落", "被切成", "成都上桌", "探店被"]),
        ("为一款新的降噪耳机做30秒的产品广告", ["产品广告在", "转台上缓缓旋转的产品广告"]),
        ("做一个一分钟的城市宣传片", ["转台", "城市在转台"]),
        ("A 45-second travel teaser for Kyoto in autumn: temples, maple leaves, tea ceremony",
         ["knife", "slices", "autumn is"]),
    ],
)  # fmt: skip
def test_the_issue_17_lines_are_gone(prompt: str, never: list[str]):
    for language in LANGUAGES:
        request = ScriptRequest(prompt=prompt, language=language, num_scenes=8)
        text = whole_text(build_fallback_script(request))
        assert not [phrase for phrase in never if phrase in text], text
