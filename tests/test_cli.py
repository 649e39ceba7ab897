"""`python -m serve_app.cli`: --local end to end (the fallback in this process, the same exporters
as the service), argument and request errors, and a service that is not there. The CLI against a
running service is tested on test_export_routes.py's app (tests there start with test_cli_)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import srt

from deployments.storyboard.exports import ExportFormat, export_script
from deployments.storyboard.fallback import build_fallback_script
from deployments.storyboard.hints import apply_hints
from deployments.storyboard.models import ScriptRequest, VideoScript
from serve_app.cli import main

ROOT = Path(__file__).resolve().parents[1]
FOREST = "制作一段关于森林探险的短视频"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def expected_script(**fields) -> VideoScript:
    request, _notes = apply_hints(ScriptRequest(**fields))
    return build_fallback_script(request)


def test_local_json_is_the_fallback_script_for_the_request(capsys):
    code, out, err = run(capsys, FOREST, "--scenes", "5", "--local", "--format", "json")
    assert code == 0, err
    script = VideoScript.model_validate(json.loads(out))
    assert len(script.scenes) == 5 and script.language == "zh"
    assert script == expected_script(prompt=FOREST, num_scenes=5)
    assert "5 scenes" in err


@pytest.mark.parametrize("output_format", ["md", "srt", "csv", "fcpxml"])
def test_local_exports_are_the_services_exporters_output(capsys, output_format):
    code, out, err = run(
        capsys, FOREST, "--scenes", "4", "--duration", "40", "--local", "--format", output_format
    )
    assert code == 0, err
    script = expected_script(prompt=FOREST, num_scenes=4, duration_s=40)
    content, _kind = export_script(script, ExportFormat(output_format))
    assert out == content.decode("utf-8")


def test_local_srt_reads_back_within_the_scripts_length(capsys):
    code, out, _ = run(
        capsys, "A 30-second film about a lost umbrella", "--local", "--format", "srt"
    )
    assert code == 0
    subtitles = list(srt.parse(out))
    assert subtitles
    assert subtitles[-1].end.total_seconds() <= 30
    assert all(sub.content.strip() for sub in subtitles)


def test_local_reads_lengths_from_the_prompt_and_says_so(capsys):
    code, out, err = run(capsys, "用3个镜头介绍一座古城", "--local", "--format", "json")
    assert code == 0
    assert len(json.loads(out)["scenes"]) == 3
    assert "note: num_scenes: 3" in err


def test_local_options_reach_the_script(capsys, tmp_path):
    target = tmp_path / "board.json"
    code, out, _ = run(
        capsys,
        "a hike in the alps",
        "--local",
        "--format",
        "json",
        "--language",
        "en",
        "--aspect-ratio",
        "9:16",
        "--visual-style",
        "watercolor illustration",
        "--character",
        "Mia=a climber in a yellow jacket",
        "-o",
        str(target),
    )
    assert code == 0 and out == ""
    script = VideoScript.model_validate(json.loads(target.read_text(encoding="utf-8")))
    assert script.language == "en" and script.aspect_ratio == "9:16"
    assert [c.name for c in script.characters] == ["Mia"]
    assert all("watercolor illustration" in scene.visual_prompt for scene in script.scenes)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["x", "--scenes", "0"], "num_scenes"),
        (["x", "--scenes", "20", "--duration", "5"], "duration_s"),
        (["\u200b\u200b"], "prompt"),
        (["x", "--character", "Mia"], "--character"),
    ],
)
def test_local_refuses_a_bad_request_naming_the_field(capsys, argv, named):
    code, out, err = run(capsys, *argv, "--local")
    assert code == 2 and out == ""
    assert err.startswith("error: ") and named in err


def test_a_choice_outside_the_vocabulary_is_an_argument_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["x", "--local", "--aspect-ratio", "5:4"])
    assert exit_info.value.code == 2
    assert "--aspect-ratio" in capsys.readouterr().err


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nothing listens


def test_a_service_that_is_not_there_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setenv("VSS_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.delenv("VSS_API_KEY", raising=False)
    # the module reads VSS_URL when it parses arguments
    code, out, err = run(capsys, FOREST)
    assert code == 1 and out == ""
    assert "cannot reach the service" in err and "--local" in err


def test_python_dash_m_runs_it():
    result = subprocess.run(
        [sys.executable, "-m", "serve_app.cli", FOREST, "--local", "--format", "md", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("# ")
