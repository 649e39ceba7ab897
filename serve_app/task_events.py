"""A task's state as a stream of server-sent events (GET /api/tasks/{id}/events).

The task may run on any ingress replica, so the stream reads its row from the task store every
`task_events_poll_s` (one indexed read per open stream and interval) and sends what changed:

- `status`: `{task_id, status, stage, progress, generated_tokens}` whenever one of them
  changes; `progress` never goes back within a stream;
- `scene`: `{task_id, draft, index, scene}` for each scene of the reply being generated, once,
  as soon as the row holds it (the runner writes the draft with its throttled progress writes:
  serve_app/task_progress.py). `draft` numbers the replies the task began: a scene of a new
  draft (the repair turn, an adopted task's new attempt) starts at index 0 again and replaces
  what the client has of older drafts. Scenes are a preview: `done`'s script is the one that
  counts (its durations add up to the total; a reply that failed to parse is replaced);
- `done`: the finished task, exactly as `GET /api/tasks/{id}` shows it; the stream then ends.
- `error`: the task was deleted meanwhile (`{"error": {"type": "not_found", ...}}`); the end.

Only scene events carry an id (`<draft>.<index>`), so a reconnecting EventSource's
`Last-Event-ID` names the last scene it has and the new stream sends only the scenes after it
(all of a newer draft's). A store outage does not end the stream: the next poll tries again
(heartbeats keep it open).
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
SCENE_EVENT = "scene"
DONE_EVENT = "done"
ERROR_EVENT = "error"

SceneCursor = tuple[int, int]  # (draft, scenes of it the client has)


def scene_cursor(last_event_id: str | None) -> SceneCursor:
    """Where a reconnecting client is, from its Last-Event-ID (`<draft>.<index>` of the last
    scene it got); anything else (none, malformed) means it has no scene."""
    draft, _, index = (last_event_id or "").strip().partition(".")
    if not (draft.isdigit() and index.isdigit()):
        return 0, 0
    return int(draft), int(index) + 1


def scene_event_id(draft: int, index: int) -> str:
    return f"{draft}.{index}"


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
    cursor: SceneCursor = (0, 0),
) -> AsyncIterator[ServerSentEvent]:
    """The events of `task` (as just read) until it finishes; then `done` and the end.
    `cursor`: the scenes the client has already (scene_cursor of its Last-Event-ID)."""
    task_id = task["task_id"]
    sent: dict[str, Any] | None = None
    progress = 0
    draft, scenes_sent = cursor
    while True:
        state = status_of(task)
        progress = state["progress"] = max(progress, state["progress"])
        if state != sent:
            yield ServerSentEvent(_json(state), event=STATUS_EVENT)
            sent = state
        if is_finished(task):
            yield ServerSentEvent(render(task).decode(), event=DONE_EVENT)
            return
        stored = task.get("draft") or {}
        if stored.get("draft", draft) != draft:  # a new reply: its scenes from the first
            draft, scenes_sent = stored["draft"], 0
        for index, scene in enumerate(stored.get("scenes", [])[scenes_sent:], scenes_sent):
            data = {"task_id": task_id, "draft": draft, "index": index, "scene": scene}
            yield ServerSentEvent(_json(data), event=SCENE_EVENT, id=scene_event_id(draft, index))
            scenes_sent = index + 1
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
