"""/api/tasks/{id}/scenes, /refine and /revisions: editing a finished storyboard (issue 13).

Each edit stores a new revision and answers 200 with the task showing it (scene regeneration
and refinement run while the request waits: they are one short model call, under the
generation deadline). Only a completed task can be edited (409 otherwise); another key's task
is a 404, as one that does not exist. `If-Match: <revision>` makes an edit fail with 409 when
the task has moved on; without it, an edit of one scene is made on the newest revision.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path

from deployments.storyboard.constants import MAX_SCENES
from serve_app.protocol import (
    RefineRequest,
    RevisionInfo,
    RevisionList,
    SceneInsert,
    SceneInstruction,
    TaskResponse,
)
from serve_app.routes.common import API_KEY, CallerOfRequest, Replica, documented_errors
from serve_app.routes.tasks import task_response
from serve_app.scene_editing import SceneEditor
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
    "/{task_id}/scenes/{number}/regenerate", response_model=TaskResponse, responses=EDIT_ERRORS
)
async def regenerate_scene(
    task_id: str,
    number: SceneNumber,
    replica: Replica,
    caller: CallerOfRequest,
    body: Annotated[SceneInstruction | None, Body()] = None,
    if_match: IfMatch = None,
) -> TaskResponse:
    """Another version of scene `number`: written by the model seeing the whole script (one
    scene's schema; same duration unless the instruction says otherwise), or, without the
    model or when it fails, another variant of the fallback's beat. `revision_source` says
    which; the other scenes stay as they are."""
    instruction = body.instruction if body else None
    task = await editor(replica, caller).regenerate_scene(
        task_id, number, instruction, revision_of(if_match)
    )
    return task_response(replica, task)


@router.post("/{task_id}/scenes", response_model=TaskResponse, responses=EDIT_ERRORS)
async def insert_scene(
    task_id: str,
    body: SceneInsert,
    replica: Replica,
    caller: CallerOfRequest,
    if_match: IfMatch = None,
) -> TaskResponse:
    """A new scene at `position` (default: the end): `scene` as given (source `edit`), or
    written by the model (else the fallback) with an optional instruction. 409 when the script
    already has the most scenes."""
    task = await editor(replica, caller).insert_scene(
        task_id, body.position, body.scene, body.instruction, revision_of(if_match)
    )
    return task_response(replica, task)


@router.post("/{task_id}/refine", response_model=TaskResponse, responses=EDIT_ERRORS)
async def refine_script(
    task_id: str,
    body: RefineRequest,
    replica: Replica,
    caller: CallerOfRequest,
    if_match: IfMatch = None,
) -> TaskResponse:
    """The model rewrites the whole script under the instruction (source `llm`). 503 when no
    model is loaded, or its reply is no valid storyboard: there is no fallback refinement, and
    nothing changes."""
    task = await editor(replica, caller).refine(task_id, body.instruction, revision_of(if_match))
    return task_response(replica, task)


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
