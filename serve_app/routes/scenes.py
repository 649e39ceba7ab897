"""/api/tasks/{id}/scenes, /refine, /edits and /revisions: editing a finished storyboard
(issue 13).

Each edit stores a new revision. PATCH, DELETE and inserting a given scene involve no model:
they run while the request waits and answer 200 with the task. Regenerate, a written insert and
refine are edit jobs (serve_app/edit_jobs.py), with task creation's semantics: 202 with the job
and a Location (GET /api/tasks/{id}/edits/{edit_id}), or `?wait=true` → 200 with the task
showing the new revision (bounded by `sync_wait_timeout_s`); an Idempotency-Key makes a retry
safe. Only a completed task can be edited (409 otherwise); another key's task is a 404, as one
that does not exist. `If-Match: <revision>` makes an edit fail with 409 when the task has moved
on; without it, an edit of one scene is made on the newest revision.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Response, status
from fastapi.exceptions import HTTPException

from deployments.storyboard.constants import MAX_SCENES
from serve_app.edit_jobs import is_finished, to_edit_response
from serve_app.errors import error_response
from serve_app.protocol import (
    EditKind,
    EditList,
    EditResponse,
    FieldProblem,
    RefineRequest,
    RevisionInfo,
    RevisionList,
    SceneInsert,
    SceneInstruction,
    TaskResponse,
)
from serve_app.replica import IngressReplica
from serve_app.routes.common import API_KEY, CallerOfRequest, Replica, documented_errors
from serve_app.routes.tasks import (
    IDEMPOTENCY_KEY_PATTERN,
    REPLAYED_HEADER,
    not_found,
    task_response,
)
from serve_app.scene_editing import SceneEditor
from serve_app.security import Caller
from serve_app.task_responses import as_datetime

router = APIRouter(prefix="/api/tasks", tags=["scenes"], dependencies=API_KEY)

SceneNumber = Annotated[int, Path(ge=1, le=MAX_SCENES, description="The scene's number, 1..n.")]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        pattern=r'^(W/)?"?[1-9][0-9]{0,8}"?$',
        description="The revision this edit starts from; 409 when the task is at another.",
    ),
]
EDIT_ERRORS = documented_errors(404, 409, 503)
JOB_RESPONSES = {
    200: {"model": TaskResponse, "description": "`?wait=true`: the task with the new revision"},
    202: {"model": EditResponse, "description": "The edit job, accepted; poll its Location"},
    **EDIT_ERRORS,
}
DISCONNECTED = "cancelled: the client disconnected from ?wait=true before the edit was stored"
Wait = Annotated[bool, Query(description="Wait for the new revision (bounded).")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Retry safely: the same key (per API key) and edit give the edit stored "
        "first, with `Idempotent-Replayed: true`; the same key for another edit is a 422.",
    ),
]
PATCH_EXAMPLE = {"narration": "A new line for the voice-over.", "duration": 6}


def editor(replica: Replica, caller: CallerOfRequest) -> SceneEditor:
    return SceneEditor(replica.store, replica.pipeline, caller.owner_filter)


def revision_of(if_match: str | None) -> int | None:
    return None if if_match is None else int(if_match.removeprefix("W/").strip('"'))


@router.patch("/{task_id}/scenes/{number}", response_model=TaskResponse, responses=EDIT_ERRORS)
async def patch_scene(
    task_id: str,
    number: SceneNumber,
    replica: Replica,
    caller: CallerOfRequest,
    changes: Annotated[
        dict[str, Any],
        Body(
            description="Any scene fields but scene_number; the script's total is recomputed.",
            examples=[PATCH_EXAMPLE],
        ),
    ],
    if_match: IfMatch = None,
) -> TaskResponse:
    """Change fields of scene `number`: a new revision (source `edit`). A field that does not
    validate is a 422 naming it, and nothing changes."""
    task = await editor(replica, caller).patch_scene(
        task_id, number, changes, revision_of(if_match)
    )
    return task_response(replica, task)


@router.delete("/{task_id}/scenes/{number}", response_model=TaskResponse, responses=EDIT_ERRORS)
async def delete_scene(
    task_id: str,
    number: SceneNumber,
    replica: Replica,
    caller: CallerOfRequest,
    if_match: IfMatch = None,
) -> TaskResponse:
    """Remove scene `number`; the rest are renumbered. The last scene cannot go: 409."""
    task = await editor(replica, caller).delete_scene(task_id, number, revision_of(if_match))
    return task_response(replica, task)


@router.post(
    "/{task_id}/scenes/{number}/regenerate",
    response_model=None,
    status_code=status.HTTP_202_ACCEPTED,
    responses=JOB_RESPONSES,
)
async def regenerate_scene(
    task_id: str,
    number: SceneNumber,
    response: Response,
    replica: Replica,
    caller: CallerOfRequest,
    body: Annotated[SceneInstruction | None, Body()] = None,
    if_match: IfMatch = None,
    wait: Wait = False,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Another version of scene `number`: written by the model seeing the whole script (one
    scene's schema; same duration unless the instruction says otherwise), or, without the
    model or when it fails, another variant of the fallback's beat. `revision_source` says
    which; the other scenes stay as they are. An edit job: 202 with it and a Location to poll;
    `?wait=true`: 200 with the task once its revision is stored."""
    params = {"scene_number": number, "instruction": body.instruction if body else None}
    return await edit_job(
        replica, caller, response, task_id, EditKind.REGENERATE, params, if_match, wait,
        idempotency_key,
    )  # fmt: skip


@router.post(
    "/{task_id}/scenes",
    response_model=None,
    status_code=status.HTTP_202_ACCEPTED,
    responses=JOB_RESPONSES,
)
async def insert_scene(
    task_id: str,
    body: SceneInsert,
    response: Response,
    replica: Replica,
    caller: CallerOfRequest,
    if_match: IfMatch = None,
    wait: Wait = False,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """A new scene at `position` (default: the end). `scene` given: stored at once, 200 with
    the task (source `edit`; no job, as PATCH). Omitted: an edit job (202, `?wait=true` as for
    regenerate) in which the model writes it (else the fallback), with an optional
    instruction. 409 when the script already has the most scenes."""
    if body.scene is not None:
        task = await editor(replica, caller).insert_scene(
            task_id, body.position, body.scene, body.instruction, revision_of(if_match)
        )
        response.status_code = status.HTTP_200_OK
        return task_response(replica, task)
    params = {"position": body.position, "instruction": body.instruction}
    return await edit_job(
        replica, caller, response, task_id, EditKind.INSERT, params, if_match, wait,
        idempotency_key,
    )  # fmt: skip


@router.post(
    "/{task_id}/refine",
    response_model=None,
    status_code=status.HTTP_202_ACCEPTED,
    responses=JOB_RESPONSES,
)
async def refine_script(
    task_id: str,
    body: RefineRequest,
    response: Response,
    replica: Replica,
    caller: CallerOfRequest,
    if_match: IfMatch = None,
    wait: Wait = False,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """The model rewrites the whole script under the instruction (source `llm`), as an edit
    job (202; `?wait=true` as for regenerate). 503 at once when no model is loaded (nothing
    accepted); a job whose model fails or whose reply is no valid storyboard fails (its
    `error_status` 503): there is no fallback refinement, and nothing changes."""
    params = {"instruction": body.instruction}
    return await edit_job(
        replica, caller, response, task_id, EditKind.REFINE, params, if_match, wait,
        idempotency_key,
    )  # fmt: skip


@router.get(
    "/{task_id}/edits/{edit_id}",
    response_model=EditResponse,
    responses=documented_errors(404, 503),
)
async def get_edit(
    task_id: str, edit_id: str, replica: Replica, caller: CallerOfRequest
) -> EditResponse:
    """An edit job: `running`, then `completed` with the `revision` it stored, or `failed`
    with `error` and `error_status`."""
    edit = await replica.edits.get(task_id, edit_id, caller.owner_filter)
    if edit is None:
        raise HTTPException(404, f"task {task_id!r} has no edit {edit_id!r}")
    return to_edit_response(edit)


@router.get("/{task_id}/edits", response_model=EditList, responses=documented_errors(404, 503))
async def list_edits(task_id: str, replica: Replica, caller: CallerOfRequest) -> EditList:
    """The task's edit jobs, newest first (at most 100)."""
    listed = await replica.edits.list(task_id, caller.owner_filter)
    if listed is None:
        raise not_found(task_id)
    return EditList(task_id=task_id, items=[to_edit_response(edit) for edit in listed])


async def edit_job(
    replica: IngressReplica,
    caller: Caller,
    response: Response,
    task_id: str,
    kind: EditKind,
    params: dict[str, Any],
    if_match: str | None,
    wait: bool,
    idempotency_key: str | None,
) -> Any:
    """Accept an edit job; 202 with it and its Location, or with `wait` the task showing its
    revision (200), the error it failed with, or the job as it stands when the wait ran out."""
    key = idempotency_key.strip('"') if idempotency_key else None
    edit = await replica.edits.submit(
        task_id, caller.owner, caller.owner_filter, kind.value, params, revision_of(if_match), key
    )
    replayed = bool(edit.get("replayed"))
    location = f"/api/tasks/{task_id}/edits/{edit['edit_id']}"
    response.headers["Location"] = location
    if replayed:
        response.headers[REPLAYED_HEADER] = "true"
    if wait:
        try:
            edit = await replica.edits.wait(edit, replica.settings.sync_wait_timeout_s)
        except asyncio.CancelledError:  # the client left: as for a task, its work stops
            if not replayed:
                replica.edits.cancel(edit["edit_id"], DISCONNECTED)
            raise
        if edit["status"] == "completed":
            task = await replica.store.get(task_id, caller.owner_filter, edit["revision"])
            if task is None:
                raise not_found(task_id)
            response.status_code = status.HTTP_200_OK
            return task_response(replica, task)
        if edit["status"] == "failed":
            return error_response(
                edit.get("error_status") or 500,
                edit.get("error") or "the edit failed",
                [FieldProblem(field=edit["error_field"], problem=edit["error"])]
                if edit.get("error_field")
                else None,
                headers={
                    "Location": location,
                    **({REPLAYED_HEADER: "true"} if replayed else {}),
                },
            )
    if replayed and is_finished(edit):
        response.status_code = status.HTTP_200_OK
    return to_edit_response(edit)


@router.get(
    "/{task_id}/revisions", response_model=RevisionList, responses=documented_errors(404, 503)
)
async def list_revisions(task_id: str, replica: Replica, caller: CallerOfRequest) -> RevisionList:
    """Every revision of the script, oldest first (read one: GET /api/tasks/{id}?revision=k)."""
    listed = await editor(replica, caller).revisions(task_id)
    items = [
        RevisionInfo(**{**item, "created_at": as_datetime(item["created_at"])}) for item in listed
    ]
    return RevisionList(task_id=task_id, items=items)
