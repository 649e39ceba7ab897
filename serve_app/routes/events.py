"""GET /api/tasks/{id}/events: the task's state as server-sent events until it finishes
(serve_app/task_events.py has the events). Auth and ownership as every /api/tasks route: an
unknown id or another key's task is a 404 in the one error shape, before any stream starts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from sse_starlette import EventSourceResponse

from serve_app.routes.common import API_KEY, CallerOfRequest, Replica, documented_errors
from serve_app.routes.tasks import not_found
from serve_app.task_events import scene_cursor, task_events
from serve_app.task_responses import task_json

router = APIRouter(prefix="/api/tasks", tags=["tasks"], dependencies=API_KEY)

STREAM_DESCRIPTION = (
    "`text/event-stream`: `status` events ({task_id, status, stage, progress, "
    "generated_tokens}) as they change, `scene` events ({task_id, draft, index, scene}, id "
    "`<draft>.<index>`) for each scene of the reply as soon as it is complete (a preview), "
    "then `done` with the finished task (as GET /api/tasks/{id}) and the end; `: ping` "
    "comments meanwhile. Send `Last-Event-ID` on reconnecting to get only the scenes after it."
)


@router.get(
    "/{task_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": STREAM_DESCRIPTION},
        **documented_errors(404, 503),
    },
)
async def stream_task_events(
    task_id: str,
    replica: Replica,
    caller: CallerOfRequest,
    last_event_id: Annotated[
        str | None,
        Header(
            description="The id of the last `scene` event a reconnecting client got "
            "(EventSource sends it): only later scenes are sent."
        ),
    ] = None,
) -> EventSourceResponse:
    """Follow a task live: its status, stage and progress, and each scene of the reply as it
    is written, until it finishes (a finished task: its final state, then the end)."""
    task = await replica.store.get(task_id, caller.owner_filter)
    if task is None:
        raise not_found(task_id)
    settings = replica.settings
    events = task_events(
        replica.store,
        task,
        caller.owner_filter,
        settings.task_events_poll_s,
        lambda finished: task_json(finished, settings.task_retention_s),
        scene_cursor(last_event_id),
    )
    return EventSourceResponse(
        events,
        ping=settings.task_events_ping_s,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
