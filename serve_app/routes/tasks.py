"""/api/tasks: accept a script request, wait for it if asked, read, list and delete tasks."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from fastapi.exceptions import HTTPException

from serve_app.errors import error_response
from serve_app.limits import check_prompt_limits
from serve_app.protocol import ScriptRequest, TaskList, TaskResponse, TaskStatus
from serve_app.replica import IngressReplica
from serve_app.routes.common import API_KEY, Replica, documented_errors
from serve_app.tasks import is_finished, to_task_response

MAX_SKIP = 1_000_000_000  # SQLite OFFSET is a 64-bit integer; larger is a 422, not a 500
MAX_LIMIT = 100
DISCONNECTED = "cancelled: the client disconnected from ?wait=true before the script was ready"

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
    request: ScriptRequest,
    response: Response,
    replica: Replica,
    wait: Annotated[bool, Query(description="Wait for the script (bounded).")] = False,
) -> TaskResponse:
    """Accept a script request; 202 + Location, or 200 with the finished task if `wait`.

    503 + Retry-After when this replica is full (nothing is stored then).
    """
    await check_prompt_limits(request, replica.settings)
    task = await replica.tasks.submit(request)
    response.headers["Location"] = f"/api/tasks/{task['task_id']}"
    if wait:
        return await _finished_task(replica, task, response)
    return to_task_response(task)


@router.get("/{task_id}", response_model=TaskResponse, responses=documented_errors(404))
async def get_task(task_id: str, replica: Replica) -> TaskResponse:
    task = await replica.store.get.remote(task_id)
    if task is None:
        raise HTTPException(404, f"no task with id {task_id!r}")
    return to_task_response(task)


@router.get("/", response_model=TaskList, responses=documented_errors(404))
async def list_tasks(
    replica: Replica,
    status: TaskStatus | None = None,
    skip: Annotated[int, Query(ge=0, le=MAX_SKIP)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
) -> TaskList:
    tasks, total = await replica.store.list_tasks.remote(
        status.value if status else None, skip, limit
    )
    return TaskList(items=[to_task_response(t) for t in tasks], total=total, skip=skip, limit=limit)


@router.delete("/{task_id}", status_code=204, responses=documented_errors(404))
async def delete_task(task_id: str, replica: Replica) -> Response:
    if not await replica.store.delete.remote(task_id):
        raise HTTPException(404, f"no task with id {task_id!r}")
    return Response(status_code=204)


async def _finished_task(replica: IngressReplica, task: dict[str, Any], response: Response):
    """The finished task (200), or the task as it stands when the wait ran out (202); a 504
    instead of the fallback's script when the deployment asks for it."""
    settings = replica.settings
    if not is_finished(task):
        task = await _wait_for(replica, task)
    if _deadline_expired(task) and settings.sync_deadline_response == "504":
        return error_response(
            504,
            f"no LLM script within {settings.generation_timeout_s:g} s; the task was "
            "completed by the fallback",
            headers={"Location": response.headers["Location"]},
        )
    if is_finished(task):
        response.status_code = status.HTTP_200_OK
    return to_task_response(task)


async def _wait_for(replica: IngressReplica, task: dict[str, Any]) -> dict[str, Any]:
    task_id = task["task_id"]
    try:
        finished = await replica.tasks.wait(task_id, replica.settings.sync_wait_timeout_s)
    except asyncio.CancelledError:  # Serve cancels the route when the client disconnects
        replica.tasks.cancel(task_id, DISCONNECTED)
        raise
    return finished or await replica.store.get.remote(task_id) or task


def _deadline_expired(task: dict[str, Any]) -> bool:
    return (task["fallback_reason"] or "").startswith("timeout")
