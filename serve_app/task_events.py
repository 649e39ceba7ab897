"""A task's state as a stream of server-sent events (GET /api/tasks/{id}/events).

The task may run on any ingress replica, so the stream reads its row from the task store every
`task_events_poll_s` (one indexed read per open stream and interval) and sends what changed:

- `status`: `{task_id, status, stage, progress, generated_tokens}` whenever one of them
  changes; `progress` never goes back within a stream;
- `done`: the finished task, exactly as `GET /api/tasks/{id}` shows it; the stream then ends.
- `error`: the task was deleted meanwhile (`{"error": {"type": "not_found", ...}}`); the end.

A store outage does not end the stream: the next poll tries again (heartbeats keep it open).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from sse_starlette import ServerSentEvent

from serve_app.errors import StoreUnavailable
from serve_app.store_client import StoreClient
from serve_app.task_responses import task_stage
from serve_app.tasks import is_finished

STATUS_EVENT = "status"
DONE_EVENT = "done"
ERROR_EVENT = "error"


def status_of(task: dict[str, Any]) -> dict[str, Any]:
    return {
        "task_id": task["task_id"],
        "status": task["status"],
        "stage": task_stage(task).value,
        "progress": task["progress"],
        "generated_tokens": task.get("generated_tokens") or 0,
    }


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


async def task_events(
    store: StoreClient,
    task: dict[str, Any],
    owner: str | None,
    poll_s: float,
    render: Callable[[dict[str, Any]], bytes],
) -> AsyncIterator[ServerSentEvent]:
    """The events of `task` (as just read) until it finishes; then `done` and the end."""
    task_id = task["task_id"]
    sent: dict[str, Any] | None = None
    progress = 0
    number = 0
    while True:
        state = status_of(task)
        progress = state["progress"] = max(progress, state["progress"])
        if state != sent:
            number += 1
            yield ServerSentEvent(_json(state), event=STATUS_EVENT, id=str(number))
            sent = state
        if is_finished(task):
            number += 1
            yield ServerSentEvent(render(task).decode(), event=DONE_EVENT, id=str(number))
            return
        await asyncio.sleep(poll_s)
        try:
            latest = await store.get(task_id, owner)
        except StoreUnavailable:
            continue  # the next poll tries again
        if latest is None:
            error = {"type": "not_found", "message": f"task {task_id!r} was deleted"}
            yield ServerSentEvent(_json({"error": error}), event=ERROR_EVENT)
            return
        task = latest
