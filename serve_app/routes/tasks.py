"""/api/tasks: accept a script request, wait for it if asked, read, list, cancel and delete
tasks. Every route sees only the caller's own tasks (admin keys: all); another key's task is a
404, exactly as one that does not exist."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.exceptions import HTTPException

from serve_app.errors import error_response
from serve_app.limits import check_prompt_limits
from serve_app.protocol import ScriptRequest, TaskCreate, TaskList, TaskResponse, TaskStatus
from serve_app.replica import IngressReplica
from serve_app.routes.common import API_KEY, CallerOfRequest, Replica, documented_errors
from serve_app.task_responses import to_task_response
from serve_app.tasks import is_finished

MAX_SKIP = 1_000_000_000  # SQLite OFFSET is a 64-bit integer; larger is a 422, not a 500
MAX_LIMIT = 100
DISCONNECTED = "cancelled: the client disconnected from ?wait=true before the script was ready"
CANCELLED = "cancelled: by the client (POST /api/tasks/{task_id}/cancel)"
DELETED = "cancelled: the task was deleted"
# The IETF draft's Idempotency-Key is a structured-field string: quoted, or (commonly) bare.
IDEMPOTENCY_KEY_PATTERN = r'^"?[\x21\x23-\x7e]{1,255}"?$'
REPLAYED_HEADER = "Idempotent-Replayed"

router = APIRouter(prefix="/api/tasks", tags=["tasks"], dependencies=API_KEY)


@router.post(
    "/",
    response_model=TaskResponse,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"model": TaskResponse, "description": "Finished (`?wait=true`)"},
        **documented_errors(503, 504),
    },
)
async def create_task(
    body: TaskCreate,
    response: Response,
    replica: Replica,
    caller: CallerOfRequest,
    wait: Annotated[bool, Query(description="Wait for the script (bounded).")] = False,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Retry safely: the same key (per API key, kept as long as the task) "
            "and body give the same task, with `Idempotent-Replayed: true`; the same key "
            "with another body is a 422.",
        ),
    ] = None,
) -> TaskResponse:
    """Accept a script request; 202 + Location, or 200 with the finished task if `wait`.
    With `callback_url`, the finished task is also POSTed there (signed; see README).

    503 + Retry-After when this replica is full (nothing is stored then) or the task store is
    unavailable. A replayed Idempotency-Key answers with the task stored first: 200 when it has
    finished, else 202 (`wait` waits for it as for a new one).
    """
    request = ScriptRequest.model_validate(body.model_dump(exclude={"callback_url"}))
    await check_prompt_limits(request, replica.settings)
    key = idempotency_key.strip('"') if idempotency_key else None
    callback_url = str(body.callback_url) if body.callback_url is not None else None
    task = await replica.tasks.submit(request, caller.owner, key, callback_url)
    replayed = bool(task.get("replayed"))
    response.headers["Location"] = f"/api/tasks/{task['task_id']}"
    if replayed:
        response.headers[REPLAYED_HEADER] = "true"
    if wait:
        return await _finished_task(replica, task, response, replayed)
    if replayed and is_finished(task):
        response.status_code = status.HTTP_200_OK
    return task_response(replica, task)


@router.get("/{task_id}", response_model=TaskResponse, responses=documented_errors(404, 503))
async def get_task(
    task_id: str,
    replica: Replica,
    caller: CallerOfRequest,
    revision: Annotated[
        int | None,
        Query(ge=1, description="Show this revision of the script (default: the latest)."),
    ] = None,
) -> TaskResponse:
    """The task; with `revision`, `result` is that revision's script (404 naming a revision
    the task never had)."""
    task = await replica.store.get(task_id, caller.owner_filter, revision)
    if task is None:
        raise not_found(task_id)
    return task_response(replica, task)


@router.get("/", response_model=TaskList, responses=documented_errors(404, 503))
async def list_tasks(
    replica: Replica,
    caller: CallerOfRequest,
    status: TaskStatus | None = None,
    skip: Annotated[int, Query(ge=0, le=MAX_SKIP)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
) -> TaskList:
    """The caller's tasks (an admin key's: everyone's), newest first."""
    tasks, total = await replica.store.list_tasks(
        status.value if status else None, skip, limit, caller.owner_filter
    )
    items = [task_response(replica, task) for task in tasks]
    return TaskList(items=items, total=total, skip=skip, limit=limit)


@router.delete("/{task_id}", status_code=204, responses=documented_errors(404, 503))
async def delete_task(task_id: str, replica: Replica, caller: CallerOfRequest) -> Response:
    """Delete the task; a running one stops (here at once; on another ingress replica when
    its next lease renewal finds the task gone)."""
    if not await replica.store.delete(task_id, caller.owner_filter):
        raise not_found(task_id)
    replica.tasks.cancel(task_id, DELETED)
    return Response(status_code=204)


@router.post(
    "/{task_id}/cancel", response_model=TaskResponse, responses=documented_errors(404, 409, 503)
)
async def cancel_task(task_id: str, replica: Replica, caller: CallerOfRequest) -> TaskResponse:
    """Stop an unfinished task: it fails with `cancelled: ...` and its generation stops (as for
    DELETE). 409 when it had already finished."""
    outcome, task = await replica.store.cancel(task_id, CANCELLED, caller.owner_filter)
    if task is None:
        raise not_found(task_id)
    if outcome == "finished":
        raise HTTPException(409, f"task {task_id!r} has already finished ({task['status']})")
    replica.tasks.cancel(task_id, CANCELLED)
    replica.tasks.notify_finished(task)
    return task_response(replica, task)


def not_found(task_id: str) -> HTTPException:
    return HTTPException(404, f"no task with id {task_id!r}")


def task_response(replica: IngressReplica, task: dict[str, Any]) -> TaskResponse:
    """The task as the contract shows it, with the revision its `result` is."""
    return to_task_response(task, replica.settings.task_retention_s)


async def _finished_task(
    replica: IngressReplica, task: dict[str, Any], response: Response, replayed: bool = False
):
    """The finished task (200), or the task as it stands when the wait ran out (202); a 504
    instead of the fallback's script when the deployment asks for it."""
    settings = replica.settings
    if not is_finished(task):
        task = await _wait_for(replica, task, replayed)
    if _deadline_expired(task) and settings.sync_deadline_response == "504":
        return error_response(
            504,
            f"no LLM script within {settings.generation_timeout_s:g} s; the task was "
            "completed by the fallback",
            headers={"Location": response.headers["Location"]},
        )
    if is_finished(task):
        response.status_code = status.HTTP_200_OK
    return task_response(replica, task)


async def _wait_for(replica: IngressReplica, task: dict[str, Any], replayed: bool) -> dict:
    task_id = task["task_id"]
    try:
        finished = await replica.tasks.wait(task_id, replica.settings.sync_wait_timeout_s)
    except asyncio.CancelledError:  # Serve cancels the route when the client disconnects
        if not replayed:  # a retry that gave up leaves the first request's task running
            replica.tasks.cancel(task_id, DISCONNECTED)
        raise
    return finished or task


def _deadline_expired(task: dict[str, Any]) -> bool:
    return (task["fallback_reason"] or "").startswith("timeout")
