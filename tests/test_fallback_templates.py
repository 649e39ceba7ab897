"""The fallback picks the template a person would expect and finds what the video is about, on
the labeled prompt set (tests/data/genre_prompts.json: zh and en, every genre); and the gallery
in docs/SCRIPTS.md is what the fallback writes today."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from deployments.storyboard.fallback.builder import choose_genre
from deployments.storyboard.fallback.terms import subject_of, typed_terms

ROOT = Path(__file__).resolve().parents[1]
LABELED = json.loads((ROOT / "tests" / "data" / "genre_prompts.json").read_text("utf-8"))
MIN_GENRE_ACCURACY = 0.9
MIN_SUBJECT_ACCURACY = 0.75


def test_the_template_is_the_labeled_genre_for_nine_prompts_in_ten():
    wrong = [
        (case["prompt"], case["genre"], choose_genre(case["prompt"]).name)
        for case in LABELED
        if choose_genre(case["prompt"]).name != case["genre"]
    ]
    accuracy = 1 - len(wrong) / len(LABELED)
    assert len(LABELED) >= 60 and accuracy >= MIN_GENRE_ACCURACY, wrong


def names_the_subject(case: dict) -> bool:
    genre = choose_genre(case["prompt"])
    subject = subject_of(typed_terms(case["prompt"]), genre.subject_kind)
    if subject is None:
        return False
    labeled = case["subject"].lower()
    return any(word and (word.lower() in labeled or labeled in word.lower())
               for word in (subject.zh, subject.en))  # fmt: skip


def test_the_subject_is_what_the_video_is_about_not_the_first_noun():
    cases = [case for case in LABELED if case["subject"]]
    missed = [(case["prompt"], case["subject"]) for case in cases if not names_the_subject(case)]
    assert 1 - len(missed) / len(cases) >= MIN_SUBJECT_ACCURACY, missed


def test_the_gallery_in_the_docs_is_current():
    checked = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fallback_gallery.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
