"""/api/tasks/{id}/export: a finished storyboard as subtitles, a shot list or a timeline."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Response
from fastapi.exceptions import HTTPException
from pydantic import ValidationError

from deployments.storyboard.exports import (
    DEFAULT_FPS,
    FORMATS,
    ExportFormat,
    FrameRate,
    ascii_file_stem,
    export_script,
    unicode_file_stem,
)
from serve_app.protocol import TaskStatus, VideoScript
from serve_app.routes.common import API_KEY, CallerOfRequest, Replica, documented_errors
from serve_app.routes.tasks import not_found

router = APIRouter(prefix="/api/tasks", tags=["exports"], dependencies=API_KEY)


@router.get(
    "/{task_id}/export",
    response_class=Response,
    responses={
        200: {
            "description": "The export, as a download named after the script's title",
            "content": {kind.media_type: {} for kind in FORMATS.values()},
        },
        **documented_errors(404, 409, 503),
    },
)
async def export_task(
    task_id: str,
    replica: Replica,
    caller: CallerOfRequest,
    export_format: Annotated[
        ExportFormat,
        Query(
            alias="format",
            description="srt, vtt: narration subtitles; csv: shot list; otio, fcpxml, edl: "
            "editing timelines; md: a readable document.",
        ),
    ],
    revision: Annotated[
        int | None, Query(ge=1, description="The script's revision (the latest if left out).")
    ] = None,
    fps: Annotated[
        FrameRate, Query(description="Frame rate of otio, fcpxml and edl.")
    ] = DEFAULT_FPS,
) -> Response:
    """The task's storyboard in `format`, as an attachment (with `revision`, that revision's,
    named `...-r{revision}`; 404 naming a revision the task never had). 409 while the task has
    no script (pending, running or failed)."""
    task = await replica.store.get(task_id, caller.owner_filter, revision)
    if task is None:
        raise not_found(task_id)
    script = _finished_script(task_id, task)
    content, kind = export_script(script, export_format, fps)
    suffix = f"-r{revision}" if revision is not None else ""
    return Response(
        content,
        media_type=f"{kind.media_type}; charset=utf-8",
        headers={"Content-Disposition": attachment(script.title, suffix + "." + kind.extension)},
    )


def _finished_script(task_id: str, task: dict) -> VideoScript:
    if task["status"] != TaskStatus.COMPLETED or task["result"] is None:
        raise HTTPException(409, f"task {task_id!r} has no script to export ({task['status']})")
    try:
        return VideoScript.model_validate(task["result"])
    except ValidationError as error:
        raise HTTPException(
            409, f"task {task_id!r} has no readable script ({error.error_count()} problems)"
        ) from None


def attachment(title: str, ending: str) -> str:
    """RFC 6266: an ASCII `filename` for every client, the title as written in `filename*`
    (RFC 5987), both followed by `ending` (`.srt`, `-r2.srt`)."""
    plain = ascii_file_stem(title) + ending
    written = quote(unicode_file_stem(title) + ending, safe="")
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{written}"
