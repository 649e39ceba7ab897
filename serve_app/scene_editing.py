"""Editing a finished storyboard (issue 13, item 4): what /api/tasks/{id}/scenes, /refine and
/revisions delegate to.

Every edit reads the task, builds the whole new script (deployments/storyboard/editing.py),
and stores it as the next revision only if the task is still at the revision it read. When
another edit came first, an edit of one scene is made again on the newer script (bounded), so
two clients editing different scenes both land; a client that sent `If-Match: <revision>`, or a
whole-script rewrite, gets a 409 instead, never a silent overwrite.

PATCH, DELETE and a given scene's insert run while the request waits (no model involved). The
edits the model (or the fallback) writes — regenerate, a written insert, refine — are jobs
(serve_app/edit_jobs.py): `check` refuses what can be refused at once, before anything is
stored; `run` is what the job's worker does, storing through `commit` (the job's
`finish_edit`, which stores only while the worker holds the job).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.exceptions import HTTPException

from deployments.storyboard.constants import LLM_SOURCES, ScriptLanguage
from deployments.storyboard.editing import (
    EditError,
    SceneLimit,
    check_room,
    edited_scene,
    fallback_new_scene,
    fallback_scene_variant,
    insert_scene_messages,
    new_scene,
    refine_messages,
    refine_request,
    rewrite_scene_messages,
    scene_from_reply,
    scene_json_schema,
    typical_duration,
    with_look,
    with_scene,
    with_scene_inserted,
    without_scene,
)
from deployments.storyboard.parser import ScriptParseError, parse_script
from deployments.storyboard.prompts import script_json_schema
from serve_app.errors import FieldError
from serve_app.pipeline import ModelDown, ScriptPipeline
from serve_app.protocol import ScriptRequest
from serve_app.store_client import StoreClient
from serve_app.tasks import stored_request

logger = logging.getLogger("ray.serve")

MAX_REBASES = 5  # an edit of one scene made again on a newer revision, at most this often
LLM_SOURCE = LLM_SOURCES[0]
REGENERATE, INSERT, REFINE = "regenerate", "insert", "refine"  # the kinds of edit jobs

# Store a script as the revision after `base`: (outcome, task) as TaskStore.add_revision says.
Commit = Callable[[str, dict[str, Any], str, str, int], Awaitable[tuple[str, dict | None]]]
# Why the model cannot take a refine now (None: it can).
ModelCheck = Callable[[], Awaitable[str | None]]


class EditLost(Exception):
    """The edit job is no longer this worker's (taken over, cancelled, its task deleted):
    nothing was stored, and the work stops."""


class SceneEditor:
    """Edits of one caller (`owner`: None for admin keys) on the tasks it may see."""

    def __init__(
        self,
        store: StoreClient,
        pipeline: ScriptPipeline,
        owner: str | None,
        commit: Commit | None = None,
        model_check: ModelCheck | None = None,
    ):
        self.store = store
        self.pipeline = pipeline
        self.owner = owner
        self._commit_to_store = commit or self._add_revision
        self.model_check = model_check

    async def _add_revision(
        self, task_id: str, script: dict[str, Any], source: str, note: str, base: int
    ) -> tuple[str, dict[str, Any] | None]:
        return await self.store.add_revision(task_id, self.owner, script, source, note, base)

    async def check(self, task_id: str, kind: str, params: dict[str, Any], if_match: int | None):
        """Refuse at once what an edit job of `kind` could not do now (nothing is stored): the
        task missing (404), not completed or past If-Match (409), no such scene (404), no
        room or position for a scene (409, 422), a refine without a model (503)."""
        _, script, _ = await self._editable(task_id, if_match)
        if kind == REGENERATE:
            _scene(script, params["scene_number"], task_id)
        elif kind == INSERT:
            _limited(check_room, script)
            _position(script, params.get("position"))
        elif kind == REFINE and self.model_check is not None:
            reason = await self.model_check()
            if reason is not None:
                raise HTTPException(
                    503, f"refine needs the model, and none is loaded ({reason}); nothing changed"
                )

    async def run(self, task_id: str, kind: str, params: dict[str, Any], if_match: int | None):
        """Do the edit job: its revision stored through `commit`; the task as it now is."""
        instruction = params.get("instruction")
        if kind == REGENERATE:
            return await self.regenerate_scene(
                task_id, params["scene_number"], instruction, if_match
            )
        if kind == INSERT:
            return await self.insert_scene(
                task_id, params.get("position"), None, instruction, if_match
            )
        if kind == REFINE:
            return await self.refine(task_id, instruction, if_match)
        raise ValueError(f"unknown edit kind {kind!r}")

    async def revisions(self, task_id: str) -> list[dict[str, Any]]:
        listed = await self.store.list_revisions(task_id, self.owner)
        if listed is None:
            raise not_found(task_id)
        return listed

    async def patch_scene(
        self, task_id: str, number: int, changes: dict[str, Any], if_match: int | None
    ) -> dict[str, Any]:
        """Scene `number` with `changes`; 422 naming the field (nothing stored)."""
        if not changes:
            raise FieldError("body", "give at least one scene field to change")
        changed = ", ".join(sorted(changes))

        def apply(script: dict[str, Any]) -> dict[str, Any]:
            scene = _scene(script, number, task_id)
            return with_scene(script, number, edited_scene(scene, changes))

        return await self._rebasing(
            task_id, if_match, apply, "edit", f"scene {number}: {changed} edited"
        )

    async def delete_scene(self, task_id: str, number: int, if_match: int | None) -> dict:
        def apply(script: dict[str, Any]) -> dict[str, Any]:
            _scene(script, number, task_id)
            return _limited(without_scene, script, number)

        return await self._rebasing(task_id, if_match, apply, "edit", f"scene {number} deleted")

    async def regenerate_scene(
        self, task_id: str, number: int, instruction: str | None, if_match: int | None
    ) -> dict[str, Any]:
        """Another version of scene `number`: the model's (seeing the whole script, held to one
        scene's schema, same duration unless `instruction` changes it), else the fallback's
        variant of that beat. The other scenes stay as they are."""
        task, script, request = await self._editable(task_id, if_match)
        _scene(script, number, task_id)
        scene, source, why = await self._scene_from_model(
            request,
            script["language"],
            rewrite_scene_messages(
                request, script, number, instruction, self._system_prompt(request)
            ),
            number,
            None if instruction else script["scenes"][number - 1]["duration"],
        )
        if scene is None:
            scene = await asyncio.to_thread(fallback_scene_variant, request, script, number)
        note = f"scene {number} regenerated" + (f": {instruction}" if instruction else "")

        def apply(latest: dict[str, Any]) -> dict[str, Any]:
            _scene(latest, number, task_id)
            return with_scene(latest, number, scene)

        return await self._rebasing(task_id, if_match, apply, source, _noted(note, why), task)

    async def insert_scene(
        self,
        task_id: str,
        position: int | None,
        given: dict[str, Any] | None,
        instruction: str | None,
        if_match: int | None,
    ) -> dict[str, Any]:
        """A scene at `position` (default: the end): `given`, else the model's, else the
        fallback's; the scenes from there on move one down."""
        task, script, request = await self._editable(task_id, if_match)
        at = _position(script, position)
        why = None
        if given is not None:
            scene, source = _field_checked(new_scene, given), "edit"
        else:
            duration = typical_duration(script)
            messages = insert_scene_messages(
                request, script, at, instruction, duration, self._system_prompt(request)
            )
            scene, source, why = await self._scene_from_model(
                request, script["language"], messages, at, None if instruction else duration
            )
            if scene is None:
                scene = await asyncio.to_thread(fallback_new_scene, request, script, at, duration)
        note = f"scene inserted at {at}" + (f": {instruction}" if instruction else "")

        def apply(latest: dict[str, Any]) -> dict[str, Any]:
            return _limited(with_scene_inserted, latest, _position(latest, position), scene)

        return await self._rebasing(task_id, if_match, apply, source, _noted(note, why), task)

    async def refine(self, task_id: str, instruction: str, if_match: int | None) -> dict:
        """The model's rewrite of the whole script under `instruction`; 503 without a model
        (no fake refinement), and when its reply is no storyboard. Made once: a concurrent
        edit meanwhile is a 409, not overwritten."""
        task, script, request = await self._editable(task_id, if_match)
        held_to = refine_request(request, script)
        messages = refine_messages(request, script, instruction, self._system_prompt(request))
        try:
            reply = await self.pipeline.model_reply(
                messages,
                script_json_schema(held_to),
                request.model,  # the task's model
            )
            refined = parse_script(reply, held_to).model_dump(mode="json")
        except ModelDown as error:
            raise HTTPException(
                503, f"refine needs the model, and none is loaded ({error}); nothing changed"
            ) from None
        except TimeoutError:
            raise HTTPException(
                503,
                f"the model gave no rewrite within {self.pipeline.generation_timeout_s:g} s; "
                "nothing changed",
            ) from None
        except ScriptParseError as error:
            raise HTTPException(
                503, f"the model's rewrite is not a valid storyboard ({error}); nothing changed"
            ) from None
        except Exception as error:
            logger.warning("refine of task %s failed: %r", task_id, error)
            raise HTTPException(
                503, f"the model failed ({type(error).__name__}); nothing changed"
            ) from None
        note = f"refined: {instruction}"[:500]
        return await self._commit(task_id, task["revision"], refined, LLM_SOURCE, note)

    def _system_prompt(self, request: ScriptRequest) -> str | None:
        return request.system_prompt or self.pipeline.settings.system_prompt  # the request's wins

    async def _scene_from_model(
        self,
        request: ScriptRequest,
        language: ScriptLanguage,
        messages: list[dict[str, str]],
        number: int,
        duration: float | None,
    ) -> tuple[dict[str, Any] | None, str, str | None]:
        """(the model's scene, "llm", None), or (None, "fallback", why the model gave none)."""
        try:
            reply = await self.pipeline.model_reply(
                messages, scene_json_schema(request), request.model
            )
            scene = scene_from_reply(reply, number, duration)
            return with_look(scene, request, language), LLM_SOURCE, None
        except ModelDown as error:
            why = str(error)
        except TimeoutError:
            why = f"timeout: no scene within {self.pipeline.generation_timeout_s:g} s"
        except ValueError as error:
            why = f"parse_failed: {error}"
        except Exception as error:
            logger.warning("scene generation failed, using the fallback: %r", error)
            why = f"generation_error: {type(error).__name__}"
        return None, "fallback", why

    async def _editable(
        self, task_id: str, if_match: int | None
    ) -> tuple[dict[str, Any], dict[str, Any], ScriptRequest]:
        """The task, its latest script and its request, if it may be edited now."""
        task = await self.store.get(task_id, self.owner)
        if task is None:
            raise not_found(task_id)
        if task["status"] != "completed" or task["result"] is None:
            raise HTTPException(
                409, f"task {task_id!r} is {task['status']}; only a completed task can be edited"
            )
        if if_match is not None and if_match != task["revision"]:
            raise _stale(task_id, if_match, task["revision"])
        try:
            request = stored_request(task)
        except ValueError as error:
            raise HTTPException(409, f"task {task_id!r} cannot be edited: {error}") from None
        return task, task["result"], request

    async def _rebasing(
        self,
        task_id: str,
        if_match: int | None,
        apply: Callable[[dict[str, Any]], dict[str, Any]],
        source: str,
        note: str,
        task: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Store `apply(latest script)` as the next revision; made again on the newer script
        when another edit came first (not with If-Match)."""
        for _ in range(MAX_REBASES):
            if task is None:
                task = (await self._editable(task_id, if_match))[0]
            script = _field_checked(apply, task["result"])
            outcome, current = await self._commit_to_store(
                task_id, script, source, note, task["revision"]
            )
            if outcome == "added":
                return _logged(current)
            _refuse(task_id, outcome, current, if_match, task["revision"])
            task = None
        raise HTTPException(409, f"task {task_id!r} kept changing; retry the edit")

    async def _commit(
        self, task_id: str, base: int, script: dict[str, Any], source: str, note: str
    ) -> dict[str, Any]:
        """Store `script` as the revision after `base`; 409 when another edit came first."""
        outcome, current = await self._commit_to_store(task_id, script, source, note, base)
        if outcome == "added":
            return _logged(current)
        if outcome == "conflict" and current is not None:
            raise HTTPException(
                409,
                f"task {task_id!r} moved on to revision {current['revision']} while revision "
                f"{base} was being rewritten; a rewrite is never stored over a script it did not "
                "read: read the task and refine again",
            )
        _refuse(task_id, outcome, current, base, base)  # a conflict: raised as if If-Match
        raise AssertionError("every outcome but `added` is refused")


def _logged(task: dict[str, Any]) -> dict[str, Any]:
    logger.info(
        "task %s: revision %s stored (source %s, %d scenes)",
        task["task_id"],
        task["revision"],
        task["revision_source"],
        len(task["result"]["scenes"]),
    )
    return task


def _refuse(
    task_id: str,
    outcome: str,
    current: dict[str, Any] | None,
    if_match: int | None,
    base: int,
) -> None:
    """The error for a revision the store did not add; returns for a conflict that may be
    made again (no If-Match)."""
    if outcome == "lost":
        raise EditLost(task_id)
    if outcome == "missing" or current is None:
        raise not_found(task_id)
    if outcome == "not_completed":
        raise HTTPException(409, f"task {task_id!r} is {current['status']}; it cannot be edited")
    if if_match is not None:
        raise _stale(task_id, base, current["revision"])


def _stale(task_id: str, expected: int, actual: int | None) -> HTTPException:
    return HTTPException(
        409,
        f"task {task_id!r} is at revision {actual}, not {expected} (If-Match); read it and "
        "edit again",
    )


def not_found(task_id: str) -> HTTPException:
    return HTTPException(404, f"no task with id {task_id!r}")


def _scene(script: dict[str, Any], number: int, task_id: str) -> dict[str, Any]:
    scenes = script["scenes"]
    if not 1 <= number <= len(scenes):
        raise HTTPException(
            404, f"task {task_id!r} has no scene {number} (its scenes are 1..{len(scenes)})"
        )
    return scenes[number - 1]


def _position(script: dict[str, Any], position: int | None) -> int:
    last = len(script["scenes"]) + 1
    if position is None:
        return last
    if not 1 <= position <= last:
        raise FieldError("body.position", f"must be 1..{last} (the script has {last - 1} scenes)")
    return position


def _field_checked(edit: Callable[..., Any], *args: Any) -> Any:
    try:
        return edit(*args)
    except EditError as error:
        raise FieldError(error.field, error.problem) from None


def _limited(edit: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    try:
        return edit(*args)
    except SceneLimit as error:
        raise HTTPException(409, str(error)) from None


def _noted(note: str, why_fallback: str | None) -> str:
    return note if why_fallback is None else f"{note} (fallback: {why_fallback})"[:500]
