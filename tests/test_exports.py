"""Exports read back with parsers that did not write them (srt, webvtt-py, csv, OpenTimelineIO
and its FCPXML/EDL adapters, markdown-it), for a zh and an en fallback script: every cue and
clip sits where the script's cumulative durations put its scene."""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Mapping, Sequence

import opentimelineio as otio
import pytest
import srt
import webvtt
from markdown_it import MarkdownIt

from deployments.storyboard.exports import (
    MAX_LINE_CHARS,
    ExportFormat,
    FrameRate,
    ascii_file_stem,
    export_script,
    unicode_file_stem,
)
from deployments.storyboard.exports.shotlist import SHOT_LIST_COLUMNS
from deployments.storyboard.exports.subtitles import narration_lines
from deployments.storyboard.exports.timeline import (
    EDL_REEL_CHARS,
    METADATA_KEY,
    edl_reel_name,
)
from deployments.storyboard.fallback import build_fallback_script
from deployments.storyboard.models import Scene, ScriptRequest, VideoScript

REQUESTS = {
    "zh": ScriptRequest(prompt="制作一段关于森林探险的短视频", duration_s=47, num_scenes=7),
    "en": ScriptRequest(
        prompt="A 45-second travel teaser for Kyoto in autumn: temples, maple leaves, tea ceremony"
    ),
}
FRAME_RATES = list(FrameRate)


def boundaries_s(script: VideoScript) -> list[float]:
    """Where scenes meet, from the script alone: 0, d1, d1+d2, ..."""
    return [math.fsum(s.duration for s in script.scenes[:i]) for i in range(len(script.scenes) + 1)]


def joined(texts: list[str], language: str) -> str:
    return ("" if language == "zh" else " ").join(texts)


def without_spaces(text: str) -> str:
    """Text to compare cues with: a word longer than a line is cut without a space marker."""
    return "".join(text.split())


@pytest.fixture(scope="module", params=sorted(REQUESTS))
def script(request) -> VideoScript:
    built = build_fallback_script(REQUESTS[request.param])
    assert built.language == request.param
    return built


def exported(script: VideoScript, export_format: str, fps: int = 25) -> str:
    content, _kind = export_script(script, ExportFormat(export_format), fps)
    return content.decode("utf-8")


def assert_cues_fit_scenes(script: VideoScript, cues: list[tuple[int, int, str]]) -> None:
    """Consume cues scene by scene: their text is the narration, the first starts where the
    scene starts, each begins where the last ended, the last ends where the scene ends, and each
    has a share of the scene's time proportional to its length."""
    edges = [round(edge * 1000) for edge in boundaries_s(script)]
    remaining = list(cues)
    for scene, start, end in zip(script.scenes, edges[:-1], edges[1:], strict=True):
        expected = without_spaces(scene.narration)
        if not expected:
            continue
        taken: list[tuple[int, int, str]] = []
        while without_spaces("".join(text for *_, text in taken)) != expected:
            assert remaining, f"scene {scene.scene_number}: narration not found in cues"
            taken.append(remaining.pop(0))
        assert taken[0][0] == start and taken[-1][1] == end
        total = sum(len(text) for *_, text in taken)
        for (begin, finish, text), following in zip(taken, [*taken[1:], None], strict=True):
            assert len(text) <= MAX_LINE_CHARS[script.language]
            assert start <= begin < finish <= end
            assert abs((finish - begin) - (end - start) * len(text) / total) <= 1
            if following:
                assert following[0] == finish
    assert not remaining


def test_srt_cues_sit_in_their_scenes(script):
    text = exported(script, "srt")
    cues = [
        (round(c.start.total_seconds() * 1000), round(c.end.total_seconds() * 1000), c.content)
        for c in srt.parse(text)
    ]
    assert cues
    assert_cues_fit_scenes(script, cues)


def test_srt_reads_the_same_in_webvtt_py(script):
    from_srt_library = [c.content for c in srt.parse(exported(script, "srt"))]
    captions = webvtt.from_buffer(io.StringIO(exported(script, "srt")), format="srt")
    assert [c.text for c in captions] == from_srt_library


def test_webvtt_cues_sit_in_their_scenes(script):
    captions = webvtt.from_buffer(io.StringIO(exported(script, "vtt")))
    cues = [(_ms(c.start), _ms(c.end), html.unescape(c.text)) for c in captions]
    assert_cues_fit_scenes(script, cues)


def _ms(timestamp: str) -> int:
    hours, minutes, seconds = timestamp.split(":")
    return round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)


def test_webvtt_escapes_markup():
    script = one_scene_script("en", narration="Tom & Jerry <b>run</b> --> home")
    [caption] = webvtt.from_buffer(io.StringIO(exported(script, "vtt")))
    assert "&lt;b&gt;" in caption.raw_text and "-->" not in caption.raw_text
    assert html.unescape(caption.text) == "Tom & Jerry <b>run</b> --> home"


@pytest.mark.parametrize(
    ("language", "narration"),
    [
        (
            "en",
            "Some places you remember with your whole body, and some you only remember "
            "with your eyes; both stay with you for a very long time afterwards.",
        ),
        ("zh", "这是一句非常非常长而且完全没有任何标点符号的旁白用来检查切分是否均匀合理"),
        ("zh", "清晨，薄雾笼罩着森林，我们背上行囊出发，去寻找传说中的那片湖泊。"),
        ("en", "Supercalifragilisticexpialidocious-and-then-some-more-letters-here!"),
    ],
)
def test_long_narration_becomes_readable_cues(language, narration):
    limit = MAX_LINE_CHARS[language]
    lines = narration_lines(narration, language)
    assert len(lines) > 1
    assert all(0 < len(line) <= limit for line in lines)
    if all(len(word) <= limit for word in narration.split()):
        assert joined(lines, language) == narration
    assert without_spaces("".join(lines)) == without_spaces(narration)
    assert min(len(line) for line in lines) >= limit // 4  # no stub of a line
    script = one_scene_script(language, narration=narration)
    captions = webvtt.from_buffer(io.StringIO(exported(script, "vtt")))
    cues = [(_ms(c.start), _ms(c.end), html.unescape(c.text)) for c in captions]
    assert_cues_fit_scenes(script, cues)


@pytest.mark.parametrize(
    ("language", "narration", "lines"),
    [
        (
            "en",
            "Everyone carries a story. This one: lost umbrella.",
            ["Everyone carries a story.", "This one: lost umbrella."],
        ),
        (
            "en",
            "Some places you remember with your whole body.",
            ["Some places you remember", "with your whole body."],
        ),
        (
            "zh",
            "有些风景，只有亲自走一趟才算真正见过。",
            ["有些风景，", "只有亲自走一趟才算真正见过。"],
        ),
        ("zh", "走近一点，才发现处处都是细节。", ["走近一点，才发现处处都是细节。"]),
    ],
)
def test_lines_break_at_clauses_and_come_out_even(language, narration, lines):
    assert narration_lines(narration, language) == lines


def test_scenes_without_narration_have_no_cue():
    script = one_scene_script("zh", narration="")
    assert list(srt.parse(exported(script, "srt"))) == []
    assert list(webvtt.from_buffer(io.StringIO(exported(script, "vtt")))) == []


def test_csv_shot_list_has_one_row_per_scene_with_cumulative_times(script):
    content, kind = export_script(script, ExportFormat.CSV)
    assert content.startswith(b"\xef\xbb\xbf") and kind.media_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    assert tuple(rows[0]) == SHOT_LIST_COLUMNS
    edges = boundaries_s(script)
    assert len(rows) == len(script.scenes)
    for row, scene, start, end in zip(rows, script.scenes, edges[:-1], edges[1:], strict=True):
        assert int(row["scene_number"]) == scene.scene_number
        assert float(row["start"]) == pytest.approx(start, abs=5e-4)
        assert float(row["end"]) == pytest.approx(end, abs=5e-4)
        assert float(row["duration"]) == pytest.approx(scene.duration, abs=5e-4)
        assert row["camera"] == scene.camera.value
        for field in ("description", "action", "narration", "visual_prompt"):
            assert row[field] == getattr(scene, field)
        assert row["characters"] == "; ".join(getattr(scene, "characters", None) or [])


def assert_clips_at_scene_times(script: VideoScript, timeline, fps: int) -> list:
    [track] = timeline.video_tracks()
    assert not any(isinstance(item, otio.schema.Gap) for item in track)
    clips = list(track.find_clips())
    assert len(clips) == len(script.scenes)
    edges = boundaries_s(script)
    for clip, scene, start, end in zip(clips, script.scenes, edges[:-1], edges[1:], strict=True):
        placed = clip.range_in_parent()
        first = placed.start_time.rescaled_to(fps).value
        last = placed.end_time_exclusive().rescaled_to(fps).value
        assert first == round(start * fps) and last == round(end * fps)
        assert abs(first / fps - start) <= 0.5 / fps and abs(last / fps - end) <= 0.5 / fps
        assert clip.name == f"Scene {scene.scene_number}"
    assert track.duration().rescaled_to(fps).value == round(script.total_duration * fps)
    return clips


@pytest.mark.parametrize("fps", FRAME_RATES)
def test_otio_timeline_has_one_clip_per_scene_with_its_data(script, fps):
    timeline = otio.adapters.read_from_string(exported(script, "otio", fps), "otio_json")
    assert timeline.name == script.title
    assert timeline.metadata[METADATA_KEY]["fps"] == fps
    clips = assert_clips_at_scene_times(script, timeline, fps)
    for clip, scene in zip(clips, script.scenes, strict=True):
        data = plain(clip.metadata[METADATA_KEY])
        assert {key: data[key] for key in scene.model_dump(mode="json")} == scene.model_dump(
            mode="json"
        )


def plain(value):
    """OTIO metadata (AnyDictionary, AnyVector) as dicts and lists."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [plain(item) for item in value]
    return value


@pytest.mark.parametrize("fps", FRAME_RATES)
def test_fcpxml_reads_back_through_the_adapter(script, fps):
    text = exported(script, "fcpxml", fps)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    timeline = otio.adapters.read_from_string(text, "fcpx_xml")
    assert_clips_at_scene_times(script, timeline, fps)


@pytest.mark.parametrize("fps", FRAME_RATES)
def test_edl_reads_back_through_the_adapter_with_cmx_reel_names(script, fps):
    text = exported(script, "edl", fps)
    assert text.isascii()
    timeline = otio.adapters.read_from_string(text, "cmx_3600", rate=fps)
    clips = assert_clips_at_scene_times(script, timeline, fps)
    for clip, scene in zip(clips, script.scenes, strict=True):
        reel = clip.metadata["cmx_3600"]["reel"]
        assert reel == edl_reel_name(scene.scene_number) and len(reel) <= EDL_REEL_CHARS
        assert reel.isalnum()


def test_markdown_has_the_title_and_a_section_per_scene(script):
    text = exported(script, "md")
    tokens = MarkdownIt().parse(text)
    headings = [
        (token.tag, tokens[i + 1].content)
        for i, token in enumerate(tokens)
        if token.type == "heading_open"
    ]
    assert headings[0] == ("h1", script.title)
    assert [tag for tag, _ in headings[1:]] == ["h2"] * len(script.scenes)
    for scene, (_, heading) in zip(script.scenes, headings[1:], strict=True):
        assert str(scene.scene_number) in heading and scene.camera.value in heading
        assert scene.narration in text and scene.visual_prompt in text


def test_markdown_escapes_markup_in_the_script():
    script = one_scene_script("en", narration="<script>alert(1)</script> **bold** # not a heading")
    html = MarkdownIt().render(exported(script, "md"))
    assert "<script>" not in html and "<strong>bold" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; **bold** # not a heading" in html


@pytest.mark.skipif(
    "characters" not in Scene.model_fields, reason="scenes carry no characters yet (item 1)"
)
def test_characters_of_a_scene_are_in_the_shot_list_document_and_timeline():
    data = one_scene_script("en", narration="Mia meets Leo.").model_dump(mode="json")
    data["scenes"][0]["characters"] = ["Mia", "Leo"]
    if "characters" in VideoScript.model_fields:  # the cast the scenes name
        data["characters"] = [
            {"name": name, "description": f"{name} in a raincoat"} for name in ("Mia", "Leo")
        ]
    script = VideoScript.model_validate(data)
    [row] = csv.DictReader(io.StringIO(exported(script, "csv").removeprefix("\ufeff")))
    assert row["characters"] == "Mia; Leo"
    assert "**Characters**: Mia, Leo" in exported(script, "md")
    timeline = otio.adapters.read_from_string(exported(script, "otio"), "otio_json")
    [clip] = timeline.video_tracks()[0].find_clips()
    assert plain(clip.metadata[METADATA_KEY])["characters"] == ["Mia", "Leo"]
    if "characters" in VideoScript.model_fields:
        assert "- **Mia**: Mia in a raincoat" in exported(script, "md")
        cast = plain(timeline.metadata[METADATA_KEY])["characters"]
        assert [character["name"] for character in cast] == ["Mia", "Leo"]


@pytest.mark.parametrize(
    ("title", "ascii_stem", "unicode_stem"),
    [
        ("A Trip to Kyoto!", "A-Trip-to-Kyoto", "A Trip to Kyoto!"),
        ("森林探险之旅", "storyboard", "森林探险之旅"),
        ("Café «Noir»", "Cafe-Noir", "Café «Noir»"),
        ('../etc/pass"wd\r\n', "etc-pass-wd", "etc-pass-wd"),
        ("///", "storyboard", "storyboard"),
    ],
)
def test_download_names_are_safe(title, ascii_stem, unicode_stem):
    assert ascii_file_stem(title) == ascii_stem
    assert unicode_file_stem(title) == unicode_stem


def one_scene_script(language: str, narration: str) -> VideoScript:
    return VideoScript.model_validate(
        {
            "title": "Test",
            "language": language,
            "total_duration": 7.3,
            "scenes": [
                {
                    "scene_number": 1,
                    "description": narration or "a scene",
                    "duration": 7.3,
                    "camera": "wide shot",
                    "action": "something happens",
                    "narration": narration,
                    "visual_prompt": "a wide shot",
                }
            ],
        }
    )
