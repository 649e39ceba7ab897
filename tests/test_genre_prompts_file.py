"""The labeled genre prompt set (tests/data/genre_prompts.json) is well formed: fields, genres,
counts per genre and language, subjects that occur in their prompts, and the issue's examples.

Only the file's shape is checked here; how well the classifier does on it is tested elsewhere.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from deployments.storyboard.language import cjk_count

PROMPTS_FILE = Path(__file__).parent / "data" / "genre_prompts.json"
GENRES = (
    "food", "product", "travel", "city", "nature", "animals",
    "sports", "education", "story", "vlog", "general",
)  # fmt: skip
MIN_PROMPTS = 72
MIN_PER_GENRE = 5
MIN_GENERAL = 3
MIN_PER_GENRE_AND_LANGUAGE = 2  # general: 1

# The examples, with the labels and subjects a person expects.
REQUIRED = {
    "A 45-second travel teaser for Kyoto in autumn: temples, maple leaves, tea ceremony": (
        "travel",
        None,
    ),
    "拍一个成都街头美食的探店vlog，要有火锅和夜市": ("food", None),
    "用5个镜头讲述咖啡的制作过程": ("food", None),
    "做一个一分钟的城市宣传片": ("city", None),
    "为一款新的降噪耳机做30秒的产品广告": ("product", "降噪耳机"),
    "A 20-second teaser for a running shoe": ("product", "running shoe"),
    "A documentary about honeybees": ("animals", "honeybees"),
}


@pytest.fixture(scope="module")
def entries() -> list[dict]:
    return json.loads(PROMPTS_FILE.read_text(encoding="utf-8"))


def language(prompt: str) -> str:
    return "zh" if cjk_count(prompt) else "en"


def test_entries_have_exactly_the_fields(entries):
    assert isinstance(entries, list)
    for entry in entries:
        assert set(entry) == {"prompt", "genre", "subject"}, entry
        assert isinstance(entry["prompt"], str) and entry["prompt"].strip() == entry["prompt"]
        assert entry["prompt"], entry
        assert entry["genre"] in GENRES, entry
        assert entry["subject"] is None or isinstance(entry["subject"], str), entry


def test_prompts_are_distinct(entries):
    prompts = [entry["prompt"] for entry in entries]
    assert [p for p, n in Counter(prompts).items() if n > 1] == []


def test_subjects_occur_in_their_prompts(entries):
    wrong = [e for e in entries if e["subject"] is not None and e["subject"] not in e["prompt"]]
    assert wrong == []
    assert all(e["subject"] != "" for e in entries)


def test_counts_per_genre(entries):
    assert len(entries) >= MIN_PROMPTS
    counts = Counter(entry["genre"] for entry in entries)
    for genre in GENRES:
        wanted = MIN_GENERAL if genre == "general" else MIN_PER_GENRE
        assert counts[genre] >= wanted, (genre, counts[genre])


def test_half_chinese_half_english(entries):
    counts = Counter(language(entry["prompt"]) for entry in entries)
    assert counts["zh"] == counts["en"] == len(entries) // 2, counts
    by_genre = Counter((entry["genre"], language(entry["prompt"])) for entry in entries)
    for genre in GENRES:
        wanted = 1 if genre == "general" else MIN_PER_GENRE_AND_LANGUAGE
        for lang in ("zh", "en"):
            assert by_genre[genre, lang] >= wanted, (genre, lang)


def test_mixed_chinese_and_english_prompts_are_in(entries):
    mixed = [
        e["prompt"]
        for e in entries
        if cjk_count(e["prompt"]) and any(c.isascii() and c.isalpha() for c in e["prompt"])
    ]
    assert "关于AI的视频" in mixed
    assert len(mixed) >= 3


@pytest.mark.parametrize(("prompt", "label"), REQUIRED.items())
def test_required_examples_carry_their_labels(entries, prompt, label):
    by_prompt = {entry["prompt"]: entry for entry in entries}
    assert prompt in by_prompt
    genre, subject = label
    assert by_prompt[prompt]["genre"] == genre
    if subject is not None:
        assert by_prompt[prompt]["subject"] == subject
