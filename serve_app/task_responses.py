"""A stored task as the HTTP contract shows it (TaskResponse), whatever the row holds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from deployments.storyboard.quality import quality_report
from serve_app.protocol import (
    ScriptRequest,
    TaskResponse,
    TaskStage,
    TaskStatus,
    TaskTimings,
    VideoScript,
    WebhookDelivery,
)


def stored_request(task: dict[str, Any]) -> ScriptRequest:
    """The task's request as a ScriptRequest; ValueError saying why a stored one is not."""
    if task.get("unreadable") or task.get("request") is None:
        raise ValueError(task.get("unreadable") or "no request stored")
    try:
        return ScriptRequest.model_validate(task["request"])
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in error.errors()
        )
        raise ValueError(problems) from None


def task_stage(task: dict[str, Any]) -> TaskStage:
    """Where the task is: how it ended once finished, else the runner's last stage."""
    if task["status"] in (TaskStatus.COMPLETED, TaskStatus.FAILED):
        return TaskStage(task["status"])
    stage = task.get("stage")
    return TaskStage(stage) if stage in TaskStage._value2member_map_ else TaskStage.QUEUED


def webhook_delivery(task: dict[str, Any]) -> WebhookDelivery | None:
    if not task.get("callback_url"):
        return None
    return WebhookDelivery(
        url=task["callback_url"],
        state=task.get("webhook_state") or "pending",
        attempts=task.get("webhook_attempts") or 0,
        last_status=task.get("webhook_last_status"),
        last_error=task.get("webhook_last_error"),
    )


def as_datetime(timestamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, tz=UTC) if timestamp else None


def elapsed_ms(start: float | None, end: float | None) -> float | None:
    return round((end - start) * 1000, 1) if start and end else None


def to_task_response(task: dict[str, Any], retention_s: float = 0.0) -> TaskResponse:
    """The task's response; a row that no longer validates is shown with `request: null` (or
    `result: null`) and the reason in `error`, never as a 500."""
    problems = []
    try:
        request = stored_request(task)
    except ValueError as error:
        request, problems = None, [f"stored request unreadable: {error}"]
    result = task["result"]
    if result is not None:
        try:
            result = VideoScript.model_validate(result)
        except ValidationError as error:
            result = None
            problems.append(f"stored result unreadable: {error.error_count()} problems")
    quality = (
        quality_report(request, result) if request is not None and result is not None else None
    )
    raw_request = task["request"] if isinstance(task["request"], dict) else {}
    prompt = raw_request.get("prompt")
    completed_at = task["completed_at"]
    return TaskResponse(
        task_id=task["task_id"],
        status=task["status"],
        progress=task["progress"],
        prompt=prompt if isinstance(prompt, str) else "",
        request=request,
        result=result,
        source=task["source"],
        fallback_reason=task["fallback_reason"],
        fallback_template=task.get("fallback_template"),
        notes=task.get("notes", []),
        error="; ".join(filter(None, [task["error"], *problems])) or None,
        attempts=task["attempts"],
        created_at=as_datetime(task["created_at"]),
        started_at=as_datetime(task["started_at"]),
        completed_at=as_datetime(completed_at),
        expires_at=as_datetime(completed_at + retention_s)
        if completed_at and retention_s
        else None,
        quality=quality,
        timings=TaskTimings(
            queued_ms=elapsed_ms(task["created_at"], task["started_at"]),
            generation_ms=task["generation_ms"],
            total_ms=elapsed_ms(task["created_at"], completed_at),
        ),
        stage=task_stage(task),
        generated_tokens=task.get("generated_tokens") or 0,
        webhook=webhook_delivery(task),
        revision=task.get("revision"),
        revision_source=task.get("revision_source"),
        revision_note=task.get("revision_note"),
    )


def task_json(task: dict[str, Any], retention_s: float = 0.0) -> bytes:
    """The task as `GET /api/tasks/{id}` sends it (the webhook's body)."""
    return to_task_response(task, retention_s).model_dump_json().encode()
