"""Issue 17 content, part C: the story, general and vlog genres and the typed lexicon.

What a user would notice: the right template for a day-in-the-life prompt, the prompt's person or
place in the lines where it fits, defaults that read as sentences, and no slot machinery showing.
"""

from __future__ import annotations

import re

import pytest

from deployments.storyboard.fallback import build_fallback_script
from deployments.storyboard.fallback.builder import choose_genre
from deployments.storyboard.fallback.glossary import BY_EN, BY_ZH, EN_TO_ZH, GLOSSARY, ZH_TO_EN
from deployments.storyboard.fallback.library import GENRES
from deployments.storyboard.models import ScriptRequest, VideoScript
from deployments.storyboard.quality import foreign_fragments

BY_NAME = {genre.name: genre for genre in GENRES}
OURS = ("story", "general", "vlog")
# Prompts the three genres were read against, in both languages.
READ_PROMPTS = [
    "一个关于友情的温暖小故事",
    "程序员的一天vlog",
    "A day in my life as a nurse",
    "关于时间的思考",
    "A short film about a lost umbrella",
    "my morning routine vlog",
    "爷爷和他的老自行车",
    "周末陶艺vlog",
    "Quarterly company highlights",
]


def lines(script: VideoScript) -> list[str]:
    return [script.title] + [
        text for s in script.scenes for text in (s.description, s.action, s.narration)
    ]


def test_the_three_genres_declare_their_subject_and_keep_their_places():
    assert BY_NAME["story"].subject_kind == "person"
    assert BY_NAME["general"].subject_kind == "object"
    assert BY_NAME["vlog"].subject_kind == "activity"
    assert BY_NAME["story"].priority == 60 and BY_NAME["general"].priority == 90
    assert BY_NAME["story"].priority < BY_NAME["vlog"].priority < BY_NAME["travel"].priority
    assert BY_NAME["vlog"].default_style == "vlog"
    assert not BY_NAME["general"].cues


@pytest.mark.parametrize(
    "prompt",
    ["程序员的一天vlog", "日常vlog", "记录生活", "外卖员的一天", "A day in my life as a nurse",
     "my morning routine vlog", "a day with me", "get ready with me"],
)  # fmt: skip
def test_day_in_the_life_prompts_are_vlogs(prompt: str):
    assert choose_genre(prompt).name == "vlog"


@pytest.mark.parametrize(
    ("prompt", "genre"),
    [("探店vlog", "food"), ("美食vlog", "food"), ("旅行vlog", "travel"), ("猫咪的一天", "animals"),
     ("A day in the life of a puppy", "animals"), ("西安古城三日游vlog", "travel"),
     ("一个关于友情的温暖小故事", "story"), ("A short film about a lost umbrella", "story"),
     ("关于时间的思考", "general")],
)  # fmt: skip
def test_vlog_cues_give_way_to_a_vlog_about_food_travel_or_a_pet(prompt: str, genre: str):
    assert choose_genre(prompt).name == genre


@pytest.mark.parametrize("prompt", READ_PROMPTS)
@pytest.mark.parametrize("language", ["zh", "en"])
def test_no_slot_machinery_shows(prompt: str, language: str):
    script = build_fallback_script(ScriptRequest(prompt=prompt, language=language, num_scenes=8))
    texts = lines(script) + [scene.visual_prompt for scene in script.scenes]
    assert not [t for t in texts if "{" in t or "}" in t or "|" in t.replace(" | vlog", "")]
    if language == "en":
        assert not [t for t in texts if re.search(r"\b(the|a|an) (the|a|an)\b", t, re.I)]
    else:
        assert foreign_fragments(ScriptRequest(prompt=prompt, language="zh"), script) == []


def test_a_programmers_vlog_follows_the_programmer_in_both_languages():
    zh = build_fallback_script(ScriptRequest(prompt="程序员的一天vlog", num_scenes=8))
    assert "跟着程序员过一天" in zh.scenes[0].narration
    assert zh.title.startswith("程序员")
    # 60 s: the sign-off needs about 6 s to say (narration fits its scene: test_narration.py).
    en = build_fallback_script(
        ScriptRequest(prompt="程序员的一天vlog", language="en", duration_s=60)
    )
    assert "with the programmer" in en.scenes[0].narration
    assert "programmer" in en.scenes[0].visual_prompt
    assert "vlog" in en.scenes[-1].narration and "See you next time" in en.scenes[-1].narration


def test_a_vlog_without_a_person_is_told_by_me_and_its_activity_is_the_main_event():
    script = build_fallback_script(ScriptRequest(prompt="周末陶艺vlog", num_scenes=8))
    assert "跟着我过一天" in script.scenes[0].narration
    assert "重头戏来了：陶艺" in script.scenes[2].description
    en = build_fallback_script(ScriptRequest(prompt="my morning routine vlog", num_scenes=8))
    assert en.title == "Morning routine | vlog"
    assert "Come spend the day with me." in en.scenes[0].narration


def test_a_story_is_about_its_person_and_keeps_its_keepsake():
    script = build_fallback_script(ScriptRequest(prompt="爷爷和他的老自行车", num_scenes=8))
    assert choose_genre("爷爷和他的老自行车").name == "story"
    text = "".join(s.description for s in script.scenes)
    assert "爷爷独自站在窗前" in text and "特写自行车" in text
    en = build_fallback_script(ScriptRequest(prompt="A short film about a lost umbrella"))
    assert "the protagonist" in en.scenes[0].description  # no person: the default stands in


def test_general_reads_for_a_subject_it_knows_nothing_about():
    script = build_fallback_script(ScriptRequest(prompt="关于时间的思考", num_scenes=8))
    assert script.title == "时间"
    assert "一个关于时间的故事" in script.scenes[0].description
    en = build_fallback_script(ScriptRequest(prompt="关于时间的思考", language="en", num_scenes=8))
    assert en.title == "Time"
    assert en.scenes[-1].narration == "Time: the story is still being written."


def test_the_lexicon_gives_every_added_word_a_kind_and_keeps_its_order_rules():
    expected = {
        "降噪耳机": ("noise-cancelling headphones", "product"),
        "跑鞋": ("running shoes", "product"),
        "蜜蜂": ("honeybees", "creature"), "枫叶": ("maple leaves", "object"),
        "红叶": ("autumn leaves", "object"), "茶道": ("tea ceremony", "activity"),
        "探店": ("food exploring", "activity"), "制作过程": ("making", "activity"),
        "城市": ("city", "place"), "街头": ("street", "place"), "程序员": ("programmer", "person"),
        "奶奶": ("grandmother", "person"), "外卖员": ("delivery rider", "person"),
        "咖啡豆": ("coffee beans", "food"), "手冲": ("pour-over coffee", "food"),
        "夜市": ("night market", "place"),
    }  # fmt: skip
    for zh, (en, kind) in expected.items():
        assert (BY_ZH[zh].en, BY_ZH[zh].kind) == (en, kind), zh
    assert ZH_TO_EN["樱花"] == "cherry blossoms" and EN_TO_ZH["adventure"] == "探险"
    assert EN_TO_ZH["grandmother"] == "奶奶" and ZH_TO_EN["外婆"] == "grandmother"
    assert EN_TO_ZH["street"] == "街道" and EN_TO_ZH["time"] == "时间"
    assert BY_EN["kyoto"].kind == "place"
    kinds = [entry.kind for entry in GLOSSARY.entries]
    assert len(GLOSSARY.entries) >= 280
    assert sum(kind is None for kind in kinds) <= 5  # adjectives and words about the video
    lower = [e.en for e in GLOSSARY.entries if not e.en[:1].isupper() and e.en != e.en.lower()]
    assert lower == ["the Bund"]  # lower case unless a name; "the Bund" is an old pair, kept


def test_new_words_do_not_start_with_an_article():
    # A slot writes "the " before a common noun itself; "the Bund" is an old name kept as it was.
    added = GLOSSARY.entries[[e.zh for e in GLOSSARY.entries].index("降噪耳机") :]
    assert not [e.en for e in added if re.match(r"(the|a|an) ", e.en)]
