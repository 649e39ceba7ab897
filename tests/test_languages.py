"""Script languages beyond zh/en (issue 16, item 3): every language of SCRIPT_LANGUAGES has its
prompts, parser aliases, fallback content, narration budget and subtitle limit, and `auto` tells
them apart. Prompt sets: tests/data/eval_prompts_languages.json (written natively)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import yaml

from deployments.storyboard.constants import (
    NARRATION_RATES,
    SCRIPT_LANGUAGES,
    SUBTITLE_LINE_CHARS,
)
from deployments.storyboard.content import DATA_DIR, ContentError
from deployments.storyboard.exports.subtitles import narration_lines
from deployments.storyboard.fallback import build_fallback_script
from deployments.storyboard.fallback.builder import choose_genre
from deployments.storyboard.fallback.library import load_genres
from deployments.storyboard.language import east_asian_count
from deployments.storyboard.languages import LANGUAGES, detect_language, load_languages
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.narration import (
    budget_unit,
    narration_budget,
    narration_fits,
    spoken_length,
)
from deployments.storyboard.parser import parse_script
from deployments.storyboard.prompts import build_messages, script_json_schema
from deployments.storyboard.quality import quality_report, score_script
from deployments.storyboard.styles import load_styles

DATA = Path(__file__).parent / "data"
SETS: dict[str, list[dict]] = json.loads((DATA / "eval_prompts_languages.json").read_text())
NEW = ("ja", "ko", "es", "fr", "de")


def request_of(case: dict, **update) -> ScriptRequest:
    return ScriptRequest(**{k: v for k, v in case.items() if k != "genre"}, **update)


def test_every_language_has_its_data_and_a_prompt_set():
    assert set(LANGUAGES) == set(SCRIPT_LANGUAGES) == {"zh", "en", *NEW}
    assert set(NARRATION_RATES) == set(SUBTITLE_LINE_CHARS) == set(SCRIPT_LANGUAGES)
    for language in NEW:
        cases = SETS[language]
        assert len(cases) >= 8 and len({case["genre"] for case in cases}) >= 7, language


@pytest.mark.parametrize("language", NEW)
def test_each_language_gets_its_own_prompt(language: str):
    prompt = SETS[language][0]["prompt"]
    system, user = build_messages(ScriptRequest(prompt=prompt))  # auto
    texts = LANGUAGES[language].prompts
    assert system["content"] == texts.system
    assert prompt in user["content"] and texts.default_style in user["content"]
    assert f"{NARRATION_RATES[language]:g}" in user["content"]  # the narration budget
    assert f'"language": "{language}"' in user["content"]
    schema = script_json_schema(ScriptRequest(prompt=prompt))
    assert schema["properties"]["language"]["enum"] == [language]
    forced = build_messages(ScriptRequest(prompt="forest", language=language))
    assert forced[0]["content"] == texts.system


REPLIES = {
    "ja": {"タイトル": "森", "シーン": [{"説明": "森の入口", "尺": "4秒", "カメラ": "wide shot",
            "動き": "歩く", "ナレーション": "出発だ。", "映像プロンプト": "forest"}]},
    "ko": {"제목": "숲", "장면": [{"설명": "숲 입구", "길이": "4초", "카메라": "wide shot",
            "동작": "걷는다", "내레이션": "출발이다.", "영상프롬프트": "forest"}]},
    "es": {"título": "Bosque", "idioma": "español",
           "escenas": [{"descripción": "La entrada", "duración": "4 segundos",
            "cámara": "plano general", "acción": "Camina", "narración": "Empezamos.",
            "prompt visual": "forest"}]},
    "fr": {"titre": "Forêt", "langue": "français",
           "scènes": [{"description": "L'entrée", "durée": "4 secondes",
            "caméra": "close", "action": "Marche", "narration": "On part.",
            "prompt visuel": "forest"}]},
    "de": {"titel": "Wald", "sprache": "Deutsch",
           "szenen": [{"beschreibung": "Der Eingang", "dauer": "4 Sekunden",
            "kamera": "wide", "handlung": "Geht", "sprechertext": "Los geht's.",
            "bildprompt": "forest"}]},
}  # fmt: skip


@pytest.mark.parametrize("language", NEW)
def test_the_parser_reads_each_languages_field_names_and_seconds(language: str):
    script = parse_script(json.dumps(REPLIES[language], ensure_ascii=False))
    [scene] = script.scenes
    assert scene.duration == 4 and scene.visual_prompt == "forest"
    assert scene.description in json.dumps(REPLIES[language], ensure_ascii=False)
    assert scene.action != scene.description and scene.narration
    assert script.language == language  # named in the reply, or read from its narration


@pytest.mark.parametrize("language", NEW)
def test_the_fallback_meets_the_quality_bar_in_each_language(language: str):
    coverage = []
    for case in SETS[language]:
        request = request_of(case)
        script = build_fallback_script(request)
        metrics = score_script(request, script)
        report = quality_report(request, script)
        assert script.language == language, case
        assert metrics.distinct_scene_ratio == 1.0, case
        assert not metrics.repeats_prompt, case
        assert metrics.duration_error_s == 0 and metrics.scene_count_ok, case
        assert metrics.language_ok and metrics.visual_prompts_english, case
        assert metrics.back_to_back_camera_repeats == 0 and metrics.foreign_fragments == 0, case
        assert report.narration_ok, case  # every line fits its scene's budget
        assert metrics.distinct_cameras >= min(metrics.scenes, 3), case
        assert choose_genre(case["prompt"]).name == case["genre"], case
        coverage.append(metrics.keyword_coverage)
    # zh/en hold 0.9 on their set (test_quality.py); see docs/SCRIPTS.md "Languages" for why
    # the lexicon-less languages are held to 0.85.
    assert statistics.mean(coverage) >= 0.85, coverage
    assert min(coverage) >= 0.5, coverage


@pytest.mark.parametrize("language", SCRIPT_LANGUAGES)
def test_any_prompt_can_be_written_in_any_language(language: str):
    for prompt in (
        "森林探险",
        "A walk in Kyoto",
        "東京のラーメン",
        "서울 야경",
        "Le marché de Lyon",
    ):
        request = ScriptRequest(prompt=prompt, language=language, duration_s=20)
        script = build_fallback_script(request)
        assert script.language == language
        assert all(not east_asian_count(scene.visual_prompt) for scene in script.scenes)
        assert quality_report(request, script).narration_ok
        assert score_script(request, script).language_ok, (prompt, script.scenes[0])


RATES = {
    "zh": (5, "characters"), "ja": (5, "characters"), "ko": (5, "characters"),
    "en": (3, "words"), "es": (3, "words"), "fr": (3, "words"), "de": (2.5, "words"),
}  # fmt: skip


@pytest.mark.parametrize("language", SCRIPT_LANGUAGES)
def test_narration_budgets_per_language(language: str):
    rate, unit = RATES[language]
    assert (NARRATION_RATES[language], budget_unit(language)) == (rate, unit)
    assert narration_budget(4, language) == int(4 * rate)


def test_narration_is_counted_in_each_languages_unit():
    assert spoken_length("おはよう、東京。", "ja") == 6
    assert spoken_length("서울의 밤", "ko") == 4
    assert spoken_length("L'été à Málaga, ¿verdad?", "es") == 4
    assert spoken_length("Großartig: ein Café-Besuch", "de") == 3
    assert narration_fits("Bis morgen.", 1, "de") and not narration_fits("Bis morgen, ja.", 1, "de")


@pytest.mark.parametrize("language", SCRIPT_LANGUAGES)
def test_subtitle_lines_keep_each_languages_limit(language: str):
    for case in SETS.get(language, [{"prompt": "城市夜景" if language == "zh" else "city"}]):
        script = build_fallback_script(request_of(case, language=language))
        for scene in script.scenes:
            for line in narration_lines(scene.narration, language):
                assert len(line) <= SUBTITLE_LINE_CHARS[language], (language, line)


def test_auto_detection_accuracy_table():
    """Every prompt set, zh and en included: the detector names its language."""
    eval_zh_en = json.loads((DATA / "eval_prompts.json").read_text("utf-8"))
    prompts = [(case["prompt"], lang) for lang, cases in SETS.items() for case in cases]
    prompts += [(c["prompt"], "zh" if east_asian_count(c["prompt"]) else "en") for c in eval_zh_en]
    table = {}
    for prompt, language in prompts:
        right, total = table.get(language, (0, 0))
        table[language] = (right + (detect_language(prompt) == language), total + 1)
    print("\nlanguage  right/total")
    for language, (right, total) in sorted(table.items()):
        print(f"{language:8}  {right}/{total}")
    assert all(right == total for right, total in table.values()), table


@pytest.mark.parametrize(
    ("text", "language"),
    [("東京の夜のvlog", "ja"), ("关于AI的视频", "zh"), ("서울 vlog", "ko"),
     ("Ein Tag am Meer", "de"), ("Un día en el mar", "es"), ("Une journée à la mer", "fr"),
     ("A day at the sea", "en"),
     ("12345", "en")],
)  # fmt: skip
def test_detect_language(text: str, language: str):
    assert detect_language(text) == language


def test_a_genre_without_a_language_fails_naming_file_and_key(tmp_path: Path):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(DATA_DIR, copy)
    path = copy / "genres" / "food.yaml"
    data = yaml.safe_load(path.read_text("utf-8"))
    del data["climax"]["ko"]
    data["opening"]["ja"]["narration"] = "서울"  # hangul where Japanese belongs
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    with pytest.raises(ContentError) as error:
        load_genres(copy, load_styles(copy))
    assert "food.yaml: climax.ko: Field required" in str(error.value)
    assert "food.yaml: opening.ja.narration: Value error, must be written in ja" in str(error.value)


def test_a_missing_language_file_fails(tmp_path: Path):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(DATA_DIR, copy)
    (copy / "languages" / "ko.yaml").unlink()
    with pytest.raises(ContentError, match="no file for ko"):
        load_languages(copy)
    data = yaml.safe_load((DATA_DIR / "languages" / "ja.yaml").read_text("utf-8"))
    data["prompts"]["user"] = data["prompts"]["user"].replace("{rate}", "")
    (copy / "languages" / "ko.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    with pytest.raises(
        ContentError, match=r"ko.yaml: prompts.user: .*missing field\(s\) \['rate'\]"
    ):
        load_languages(copy)


def test_a_japanese_request_without_a_model_is_a_japanese_storyboard_that_fits():
    request = ScriptRequest(prompt="京都の紅葉を巡る旅の動画を作って", duration_s=30, num_scenes=5)
    script = build_fallback_script(request)
    assert script.language == "ja" and script.total_duration == 30 and len(script.scenes) == 5
    for scene in script.scenes:
        assert east_asian_count(scene.description) and east_asian_count(scene.narration)
        assert scene.visual_prompt.isascii()
        assert spoken_length(scene.narration, "ja") <= narration_budget(scene.duration, "ja")
