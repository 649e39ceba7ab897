"""GET /api/tasks/{id}/export over real HTTP, on an app without weights (fallback scripts):
each format's status, content type, download name and body; 422, 409 and 404."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from urllib.parse import unquote

import opentimelineio as otio
import pytest

from deployments.storyboard.exports import FORMATS, ExportFormat, export_script
from serve_app.protocol import VideoScript
from serve_app.task_store import TaskStore

pytestmark = pytest.mark.integration

ALICE = {"Authorization": "Bearer alice-export-key"}
BOB = {"Authorization": "Bearer bob-export-key"}
ADMIN = {"Authorization": "Bearer admin-export-key"}
PROMPTS = {"zh": "制作一段关于森林探险的短视频", "en": "A short film about a lost umbrella"}


@pytest.fixture(scope="module")
def app(deploy_app, tmp_path_factory):
    missing = tmp_path_factory.mktemp("empty") / "chatglm3-6b"
    return deploy_app(
        model_path=str(missing),
        model_recheck_s=600,
        api_keys="alice-export-key,bob-export-key",
        admin_api_keys="admin-export-key",
    )


@pytest.fixture(scope="module")
def client(app):
    with app.client() as client:
        yield client


@dataclass(frozen=True)
class FinishedTask:
    task_id: str
    result: VideoScript


@pytest.fixture(scope="module")
def tasks(client) -> dict[str, FinishedTask]:
    """A finished fallback task per language, Alice's, deleted when the module is done."""
    made = {}
    for language, prompt in PROMPTS.items():
        response = client.post(
            "/api/tasks/", json={"prompt": prompt}, params={"wait": "true"}, headers=ALICE
        )
        assert response.status_code == 200
        task = response.json()
        made[language] = FinishedTask(task["task_id"], VideoScript.model_validate(task["result"]))
        assert made[language].result.language == language
    yield made
    for task in made.values():
        client.delete(f"/api/tasks/{task.task_id}", headers=ALICE)


def export(client, task_id: str, headers=ALICE, **params):
    return client.get(f"/api/tasks/{task_id}/export", params=params, headers=headers)


def download_names(disposition: str) -> tuple[str, str]:
    """(filename, filename*) of an RFC 6266 attachment header."""
    kind, *parameters = [part.strip() for part in disposition.split(";")]
    assert kind == "attachment"
    values = dict(parameter.split("=", 1) for parameter in parameters)
    assert values["filename*"].startswith("UTF-8''")
    plain = values["filename"]
    assert plain.startswith('"') and plain.endswith('"') and plain.isascii()
    return plain[1:-1], unquote(values["filename*"].removeprefix("UTF-8''"))


def field_names(response) -> list[str]:
    return [problem["field"] for problem in response.json()["error"]["fields"]]


@pytest.mark.parametrize("language", sorted(PROMPTS))
@pytest.mark.parametrize("export_format", list(ExportFormat))
def test_each_format_downloads_with_its_type_and_name(client, tasks, language, export_format):
    task = tasks[language]
    response = export(client, task.task_id, format=export_format.value)
    kind = FORMATS[export_format]
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{kind.media_type}; charset=utf-8"
    plain, written = download_names(response.headers["content-disposition"])
    assert plain.endswith(f".{kind.extension}") and written.endswith(f".{kind.extension}")
    assert written == f"{task.result.title}.{kind.extension}"
    if language == "zh":
        assert plain == f"storyboard.{kind.extension}"
    else:
        assert plain == f"{task.result.title.replace(' ', '-')}.{kind.extension}"
    expected, _ = export_script(task.result, export_format)
    assert response.content == expected


def test_fps_sets_the_timeline_rate(client, tasks):
    script: VideoScript = tasks["en"].result
    response = export(client, tasks["en"].task_id, format="otio", fps=30)
    timeline = otio.adapters.read_from_string(response.text, "otio_json")
    [track] = timeline.video_tracks()
    assert track.duration().rate == 30
    assert track.duration().value == round(script.total_duration * 30)


@pytest.mark.parametrize("fps", [0, 23.976, 29.97, 48, 120, "fast"])
def test_a_frame_rate_out_of_range_is_a_422(client, tasks, fps):
    response = export(client, tasks["en"].task_id, format="edl", fps=fps)
    assert response.status_code == 422 and field_names(response) == ["query.fps"]


@pytest.mark.parametrize("params", [{"format": "docx"}, {"format": "SRT"}, {}])
def test_an_unknown_or_missing_format_is_a_422(client, tasks, params):
    response = export(client, tasks["zh"].task_id, **params)
    assert response.status_code == 422 and field_names(response) == ["query.format"]


def test_revision_one_is_the_first_script_and_others_are_404(client, tasks):
    task = tasks["zh"]
    first = export(client, task.task_id, format="srt", revision=1)
    assert first.status_code == 200
    assert first.content == export_script(task.result, ExportFormat.SRT)[0]
    assert download_names(first.headers["content-disposition"])[1] == f"{task.result.title}-r1.srt"
    missing = export(client, task.task_id, format="srt", revision=2)
    assert missing.status_code == 404 and "revision 2" in missing.json()["error"]["message"]
    assert export(client, task.task_id, format="srt", revision=0).status_code == 422


def test_an_edited_task_exports_each_revision(client):
    """After a PATCH, the export is the new revision's; revision=1 is still the first script."""
    created = client.post(
        "/api/tasks/", json={"prompt": PROMPTS["en"]}, params={"wait": "true"}, headers=ALICE
    ).json()
    task_id, first = created["task_id"], VideoScript.model_validate(created["result"])
    try:
        patched = client.patch(
            f"/api/tasks/{task_id}/scenes/1",
            json={"narration": "A new first line."},
            headers=ALICE,
        )
        assert patched.status_code == 200
        second = VideoScript.model_validate(patched.json()["result"])
        assert second.scenes[0].narration == "A new first line."
        latest = export(client, task_id, format="vtt")
        assert latest.content == export_script(second, ExportFormat.VTT)[0]
        assert export(client, task_id, format="vtt", revision=2).content == latest.content
        original = export(client, task_id, format="vtt", revision=1)
        assert original.content == export_script(first, ExportFormat.VTT)[0] != latest.content
    finally:
        client.delete(f"/api/tasks/{task_id}", headers=ALICE)


def test_an_unknown_task_or_another_keys_is_a_404(client, tasks):
    assert export(client, uuid.uuid4().hex, format="md").status_code == 404
    bobs_view = export(client, tasks["en"].task_id, headers=BOB, format="md")
    assert bobs_view.status_code == 404
    assert bobs_view.json()["error"]["type"] == "not_found"
    assert export(client, tasks["en"].task_id, headers=ADMIN, format="md").status_code == 200


def test_a_task_without_a_script_is_a_409(app, client):
    """A running task (its lease far off, so no replica adopts it) and a failed one, written to
    the app's task file as a replica writes them."""
    store = TaskStore(app.args["task_db_path"])
    running, failed = uuid.uuid4().hex, uuid.uuid4().hex
    try:
        for task_id in (running, failed):
            store.create_running(task_id, {"prompt": "城市夜景"}, "test-worker", 3600)
        store.fail(failed, "boom")
        for task_id, status in ((running, "running"), (failed, "failed")):
            response = export(client, task_id, headers=ADMIN, format="srt")
            assert response.status_code == 409
            assert response.json()["error"]["type"] == "conflict"
            assert status in response.json()["error"]["message"]
    finally:
        for task_id in (running, failed):
            store.delete(task_id)


# --- python -m serve_app.cli against this app (tests/test_cli.py has the rest) ---------------


def cli(app, *argv: str, key: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSS_")}
    env["VSS_URL"] = app.url
    if key is not None:
        env["VSS_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "serve_app.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.parametrize("output_format", ["md", "srt", "json"])
def test_cli_prints_the_services_export_of_the_task_it_made(app, client, output_format):
    result = cli(
        app, PROMPTS["zh"], "--scenes", "5", "--format", output_format, key="alice-export-key"
    )
    assert result.returncode == 0, result.stderr
    [task_id] = re.findall(r"task ([0-9a-f]+): completed \(source: fallback", result.stderr)
    try:
        task = client.get(f"/api/tasks/{task_id}", headers=ALICE).json()
        assert task["request"]["num_scenes"] == 5
        if output_format == "json":
            assert json.loads(result.stdout) == task["result"]
        else:
            exported = export(client, task_id, headers=ALICE, format=output_format)
            assert result.stdout == exported.text
    finally:
        client.delete(f"/api/tasks/{task_id}", headers=ALICE)


def test_cli_says_what_the_service_refused(app):
    no_key = cli(app, PROMPTS["en"], key=None)
    assert no_key.returncode == 2 and no_key.stdout == ""
    assert "HTTP 401" in no_key.stderr and "VSS_API_KEY" in no_key.stderr
    unfit = cli(app, PROMPTS["en"], "--scenes", "20", "--duration", "5", key="bob-export-key")
    assert unfit.returncode == 2 and unfit.stdout == ""
    assert "HTTP 422" in unfit.stderr and "body.duration_s" in unfit.stderr
