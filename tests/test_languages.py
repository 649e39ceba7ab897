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
from deployments.storyboard.editing import (
    insert_scene_messages,
    refine_messages,
    rewrite_scene_messages,
)
from deployments.storyboard.exports.subtitles import narration_lines
from deployments.storyboard.fallback import build_fallback_script
from deployments.storyboard.fallback.builder import choose_genre
from deployments.storyboard.fallback.glossary import BY_LANGUAGE, GLOSSARY
from deployments.storyboard.fallback.keywords import extract_terms, prompt_language
from deployments.storyboard.fallback.library import load_genres
from deployments.storyboard.fallback.terms import typed_terms
from deployments.storyboard.hints import apply_hints, read_hints
from deployments.storyboard.korean import RIEUL, attach_particle, final_consonant, particle_for
from deployments.storyboard.language import east_asian_count
from deployments.storyboard.languages import (
    LANGUAGES,
    MIN_LATIN_EVIDENCE,
    detect_language,
    latin_scores,
    load_languages,
)
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.narration import (
    budget_unit,
    narration_budget,
    narration_fits,
    spoken_length,
)
from deployments.storyboard.parser import parse_script
from deployments.storyboard.prompts import CAMERA_NAMES, build_messages, script_json_schema
from deployments.storyboard.quality import quality_report, score_script, slot_misfits
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
    # zh/en's bar (test_quality.py): mean 0.9, none under 0.5. Spanish is held to 0.85: its set
    # names more words than its genres' short arcs have slots of their kinds (entrenamiento, an
    # activity, where sports writes only its subject; niños, a person, where education has no
    # person slot; rascacielos, a second object, where a 5-scene city arc has one) and a word
    # of another kind would misread there (docs/SCRIPTS.md "Languages").
    assert statistics.mean(coverage) >= COVERAGE_BAR[language], coverage
    assert min(coverage) >= 0.5, coverage


COVERAGE_BAR = {"ja": 0.9, "ko": 0.9, "es": 0.85, "fr": 0.9, "de": 0.9}


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
     ("A day at the sea", "en"), ("Le marché de Lyon", "fr"), ("El gato", "es"),
     ("12345", "en"),
     # Too little to tell: the default (English), not a guess.
     ("O", "en"), ("Un", "en"), ("La", "en"), ("Die", "en"), ("Le chat", "en"), ("Paris", "en"),
     ("Sushi", "en")],
)  # fmt: skip
def test_detect_language(text: str, language: str):
    assert detect_language(text) == language


def test_thin_evidence_falls_back_to_the_default_language():
    assert detect_language("O", default="fr") == "fr"
    assert detect_language("Le chat", default="de") == "de"
    assert latin_scores("O")["es"] > 0  # some evidence, but under the bar
    assert max(latin_scores("O").values()) < MIN_LATIN_EVIDENCE
    assert detect_language("Un día en el mar", default="fr") == "es"  # enough: not the default
    assert detect_language("東京の夜", default="en") == "ja"  # scripts are never thin


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


KYOTO = "京都の紅葉を巡る旅の動画を作って"


def test_the_glossary_types_each_languages_words():
    terms = {term.written("ja"): term for term in typed_terms(KYOTO)}
    assert (terms["京都"].kind, terms["京都"].en, terms["京都"].name) == ("place", "Kyoto", True)
    assert (terms["紅葉"].kind, terms["紅葉"].en) == ("object", "autumn leaves")
    cases = {
        ("서울 야경을 담은 도시 영상", "서울"): ("place", "Seoul"),
        ("우리 집 고양이의 하루", "고양이"): ("creature", "cat"),  # 고양이 keeps its 이
        ("Un día con mis perros", "perros"): ("creature", "dog"),  # plural
        ("Viaje de fin de semana", "fin de semana"): ("season", "weekend"),  # a phrase
        ("Le marché de Lyon", "Lyon"): ("place", "Lyon"),
        ("Eine Läuferin im Wald", "Läuferin"): ("person", "runner"),  # feminine
        ("マラソン大会に挑む市民ランナー", "市民ランナー"): ("person", "amateur runner"),
        ("Ein Schokoladenkuchen aus der Küche", "Schokoladenkuchen"): ("food", "cake"),  # its head
    }
    for (prompt, word), (kind, english) in cases.items():
        found = {term.written(prompt_language(prompt)): term for term in typed_terms(prompt)}
        assert (found[word].kind, found[word].en) == (kind, english), (prompt, found)


def test_the_glossary_has_the_common_words_in_every_language():
    for language in NEW:
        words = BY_LANGUAGE[language]
        assert len(words) >= 350, language
        # every entry that names a place with a name has it in every language
    named = [e for e in GLOSSARY.entries if e.en[:1].isupper() and e.kind == "place"]
    assert all(e.word(language) for e in named for language in NEW), [
        e.en for e in named if not all(e.word(language) for language in NEW)
    ]


def test_a_prompts_words_reach_lines_and_visuals_in_any_language():
    """Kyoto, not "a faraway town"; 紅葉 fills an object slot, never a place slot."""
    for language, kyoto in {"ja": "京都", "es": "Kioto", "ko": "교토", "de": "Kyoto"}.items():
        request = ScriptRequest(prompt=KYOTO, language=language, duration_s=30, num_scenes=5)
        script = build_fallback_script(request)
        visuals = " ".join(scene.visual_prompt for scene in script.scenes)
        assert "Kyoto" in visuals and "autumn leaves" in visuals, visuals
        assert "faraway" not in visuals
        assert kyoto in script.title, script.title
        assert slot_misfits(request, script) == [], language
    ja = build_fallback_script(ScriptRequest(prompt=KYOTO, duration_s=30, num_scenes=5))
    assert not any("紅葉では" in scene.description for scene in ja.scenes)


def test_the_topic_carries_over_between_languages():
    kyoto = extract_terms(KYOTO)
    assert kyoto.topic_in("es", "-") == "hojas de otoño de Kioto"
    assert kyoto.topic_in("fr", "-") == "feuilles d'automne de Kyoto"
    assert kyoto.topic_in("ko", "-") == "교토 단풍"
    assert kyoto.topic_in("de", "-") == "Kyoto-Herbstlaub"
    assert extract_terms("森林探险").topic_in("ja", "-") == "森の探検"
    assert extract_terms("Le marché de Lyon").topic_in("es", "-") == "mercado"
    # A word the glossary does not know: the genre's own topic.
    assert extract_terms("Ein Video über Zwetschgendatschi").topic_in("ja", "-") == "-"
    for language, topic in {"ja": "光合成", "es": "Fotosíntesis", "de": "Photosynthese"}.items():
        request = ScriptRequest(prompt="科普视频：光合作用的原理", language=language)
        assert topic in build_fallback_script(request).title, language


def test_a_japanese_request_without_a_model_is_a_japanese_storyboard_that_fits():
    request = ScriptRequest(prompt="京都の紅葉を巡る旅の動画を作って", duration_s=30, num_scenes=5)
    script = build_fallback_script(request)
    assert script.language == "ja" and script.total_duration == 30 and len(script.scenes) == 5
    for scene in script.scenes:
        assert east_asian_count(scene.description) and east_asian_count(scene.narration)
        assert scene.visual_prompt.isascii()
        assert spoken_length(scene.narration, "ja") <= narration_budget(scene.duration, "ja")


@pytest.mark.parametrize(
    ("word", "final"),
    [("교토", 0), ("서울", RIEUL), ("부산", 4), ("숲", 26), ("고양이", 0), ("5", 0), ("1", RIEUL),
     ("3", 16), ("교토)", 0), ("Kyoto", None), ("", None)],
)  # fmt: skip
def test_korean_final_consonant(word: str, final: int | None):
    assert final_consonant(word) == final


@pytest.mark.parametrize(
    ("word", "written", "right"),
    [("교토", "으로", "로"), ("서울", "으로", "로"), ("부산", "로", "으로"), ("고양이", "을", "를"),
     ("숲", "를", "을"), ("바다", "이", "가"), ("산", "가", "이"), ("책", "는", "은"),
     ("친구", "과", "와"), ("도시", "랑", "랑"), ("강", "랑", "이랑"), ("7", "으로", "로"),
     ("3", "로", "으로"), ("Kyoto", "를", "를"), ("교토", "의", "의")],
)  # fmt: skip
def test_korean_particle_follows_the_batchim(word: str, written: str, right: str):
    assert particle_for(word, written) == right
    assert attach_particle(word, f"{written} 떠난다") == f"{right} 떠난다"


def test_korean_particles_are_only_changed_where_they_are_particles():
    assert attach_particle("부산", "이야기") == "이야기"  # 이 starts a word here
    assert attach_particle("부산", "의 골목") == "의 골목"  # no pair
    assert attach_particle("부산", " 가는 길") == " 가는 길"  # a space: no particle
    assert attach_particle("부산", "로.") == "으로."


def test_korean_scripts_agree_their_particles_with_the_filled_words():
    titles = {
        "부산 바다로 떠나는 여행 영상": "부산으로 떠나는 여행",
        KYOTO: "교토로 떠나는 여행",
        "서울 여행": "서울로 떠나는 여행",
    }
    for prompt, title in titles.items():
        request = ScriptRequest(prompt=prompt, language="ko", duration_s=30, num_scenes=5)
        script = build_fallback_script(request)
        assert script.title == title
        assert slot_misfits(request, script) == [], prompt  # either form reads as the template
    for case in SETS["ko"]:
        request = request_of(case)
        assert slot_misfits(request, build_fallback_script(request)) == [], case


HINTS = {
    "ja": [("京都の紅葉の動画、30秒で5シーン", 30, 5), ("1分30秒の動画、五つのシーン", 90, 5),
           ("東京の夜景、2分", 120, None), ("各シーン5秒、合計40秒の動画", 40, None)],
    "ko": [("부산 여행 영상 30초, 5개 장면", 30, 5), ("서울 야경 1분 30초 장면 4개", 90, 4),
           ("다섯 장면으로 된 2분 영상", 120, 5), ("장면당 5초씩, 총 40초", 40, None)],
    "es": [("Un vídeo de 30 segundos en 5 escenas", 30, 5),
           ("Vídeo de dos minutos, seis planos", 120, 6),
           ("Un vídeo de 1 minuto y 30 segundos", 90, None),
           ("medio minuto sobre Madrid", 30, None),
           ("6 escenas de 5 segundos cada una", None, 6), ("una escena en la playa", None, None)],
    "fr": [("Une vidéo de 30 secondes en 5 scènes", 30, 5), ("deux minutes, cinq plans", 120, 5),
           ("une demi-minute sur Lyon", 30, None), ("1 minute et 30 secondes", 90, None),
           ("chaque scène de 4 secondes", None, None), ("une scène au marché", None, None)],
    "de": [("Ein Video von 30 Sekunden mit 5 Szenen", 30, 5),
           ("zwei Minuten, sechs Einstellungen", 120, 6),
           ("je 5 Sekunden, insgesamt 40 Sekunden", 40, None),
           ("eine halbe Minute über Berlin", 30, None),
           ("1 Minute und 30 Sekunden", 90, None), ("eine Szene am Strand", None, None)],
}  # fmt: skip


@pytest.mark.parametrize("language", NEW)
def test_prompt_hints_read_each_languages_units_and_counts(language: str):
    for prompt, duration, scenes in HINTS[language]:
        hints = read_hints(prompt)
        assert (hints.duration_s, hints.num_scenes) == (duration, scenes), prompt
    # The request built from the first prompt takes them (the fields it leaves open).
    prompt, duration, scenes = HINTS[language][0]
    request, _ = apply_hints(ScriptRequest(prompt=prompt))
    assert (request.duration_s, request.num_scenes) == (duration, scenes)
    script = build_fallback_script(request)
    assert script.total_duration == duration and len(script.scenes) == scenes


@pytest.mark.parametrize("language", SCRIPT_LANGUAGES)
def test_editing_prompts_are_written_in_the_scripts_language(language: str):
    request = ScriptRequest(prompt="Kyoto", language=language, duration_s=20, num_scenes=4)
    script = build_fallback_script(request).model_dump(mode="json")
    compact = json.dumps(script, ensure_ascii=False, separators=(",", ":"))
    texts = LANGUAGES[language].editing
    rewrite = rewrite_scene_messages(request, script, 2, "more rain")[1]["content"]
    insert = insert_scene_messages(request, script, 3, None, 5.0)[1]["content"]
    refine = refine_messages(request, script, "make it funnier")[1]["content"]
    assert texts.rewrite_task.format(number=2) in rewrite
    assert texts.instruction.format(text="more rain") in rewrite
    assert texts.insert_task.format(number=3) in insert
    for content in (rewrite, insert, refine):
        assert compact in content and CAMERA_NAMES in content
        instructions = content.replace(compact, "").replace(CAMERA_NAMES, "")
        instructions = instructions.replace("more rain", "").replace("make it funnier", "")
        assert detect_language(instructions) == language, (language, instructions)
        if language != "en":
            assert "Here is a short-video storyboard" not in content
