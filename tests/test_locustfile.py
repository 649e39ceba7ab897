"""The load test's own checks: a 200 carrying an invalid script must count as a failure."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from deployments.storyboard.models import ScriptRequest, VideoScript
from loadtests.checks import finished_task_problem
from loadtests.prompts import script_request

VALID_SCRIPT = VideoScript.model_config["json_schema_extra"]["example"]


def completed_task(result) -> dict:
    return {"status": "completed", "source": "fallback", "result": result, "error": None}


def test_a_completed_valid_script_passes():
    assert finished_task_problem(completed_task(VALID_SCRIPT)) is None


@pytest.mark.parametrize(
    "task",
    [
        completed_task({**VALID_SCRIPT, "total_duration": 99.0}),
        completed_task({**VALID_SCRIPT, "scenes": []}),
        completed_task(None),
        {"status": "failed", "source": None, "result": None, "error": "boom"},
        {**completed_task(VALID_SCRIPT), "source": "made-up"},
        ["not", "an", "object"],
    ],
    ids=["durations-disagree", "no-scenes", "no-result", "failed", "bad-source", "not-a-dict"],
)
def test_an_invalid_or_unfinished_task_is_a_failure(task):
    assert finished_task_problem(task)


def test_generated_requests_are_valid_api_bodies():
    rng = random.Random(0)
    bodies = [script_request(rng) for _ in range(200)]
    for body in bodies:
        ScriptRequest.model_validate(body)
    assert {ScriptRequest.model_validate(b).prompt.isascii() for b in bodies} == {True, False}


def test_the_locustfile_loads_and_defines_the_client():
    root = Path(__file__).resolve().parents[1]
    listed = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--list"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert "ScriptClient" in listed.stdout
