"""What counts as a good answer under load; apart from the locustfile so tests can import it
without Locust's gevent monkey-patching."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from deployments.storyboard.constants import SCRIPT_SOURCES
from deployments.storyboard.models import VideoScript


def finished_task_problem(task: Any) -> str | None:
    """Why a finished-task payload is not a completed, valid storyboard; None when it is."""
    if not isinstance(task, dict):
        return f"task is a {type(task).__name__}, not an object"
    if task.get("status") != "completed":
        return f"status is {task.get('status')!r}: {task.get('error')}"
    if task.get("source") not in SCRIPT_SOURCES:
        return f"source is {task.get('source')!r}"
    try:
        VideoScript.model_validate(task.get("result"))
    except ValidationError as error:
        return f"invalid script: {error.errors()[0]['msg']}"
    return None
