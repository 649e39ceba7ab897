"""The HTTP front door: thin FastAPI routes that delegate to the task runner and deployments."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import FastAPI, Query, Response, status
from fastapi.exceptions import HTTPException
from ray import serve
from ray.serve.handle import DeploymentHandle

from serve_app.config import Settings
from serve_app.errors import FieldError, install_error_handlers
from serve_app.pipeline import ScriptPipeline
from serve_app.protocol import (
    ErrorResponse,
    HealthResponse,
    ModelStatus,
    ScriptRequest,
    TaskList,
    TaskResponse,
    TaskStatus,
)
from serve_app.tasks import TaskRunner, to_task_response

STATUS_TIMEOUT_S = 5.0
ERRORS = {code: {"model": ErrorResponse} for code in (404, 422)}

api = FastAPI(
    title="video-script-serve",
    summary="Storyboard scripts from short prompts, by ChatGLM3-6B with a fallback that always "
    "answers.",
    version="0.1.0",
)
install_error_handlers(api)


@serve.deployment(name="Ingress", max_ongoing_requests=256)
@serve.ingress(api)
class Ingress:
    async def __init__(
        self,
        chat: DeploymentHandle,
        processor: DeploymentHandle,
        store: DeploymentHandle,
        settings: Settings,
    ):
        self.chat = chat
        self.store = store
        self.settings = settings
        pipeline = ScriptPipeline(chat, processor, settings.self_repair)
        self.tasks = TaskRunner(store, pipeline, settings)
        self.tasks.start_adopting_orphans()

    @api.get("/health", response_model=HealthResponse)
    async def health(self) -> HealthResponse:
        """200 whenever scripts can be served; `degraded` means fallback scripts only."""
        try:
            model = await asyncio.wait_for(self.chat.status.remote(), STATUS_TIMEOUT_S)
        except Exception as error:
            return HealthResponse(
                status="degraded",
                llm_loaded=False,
                device=None,
                model_path=self.settings.model_path,
                reason=f"ChatGLM deployment unreachable: {type(error).__name__}",
            )
        return HealthResponse(
            status="ok" if model["loaded"] else "degraded",
            llm_loaded=model["loaded"],
            device=model.get("device"),
            model_path=model["model_path"],
            reason=model["reason"],
        )

    @api.get("/api/model/status", response_model=ModelStatus)
    async def model_status(self) -> dict[str, Any]:
        return await self._model_status(self.chat.status.remote())

    @api.post("/api/model/load", response_model=ModelStatus)
    async def load_model(self) -> dict[str, Any]:
        """Load the model on the replica that answers (admin)."""
        return await self._model_status(self.chat.load.remote())

    @api.post("/api/model/unload", response_model=ModelStatus)
    async def unload_model(self) -> dict[str, Any]:
        """Free the model's memory; scripts come from the fallback until it is loaded (admin)."""
        return await self._model_status(self.chat.unload.remote())

    async def _model_status(self, model_call) -> dict[str, Any]:
        model, scripts = await asyncio.gather(model_call, self.store.source_counts.remote())
        return {**model, "scripts": scripts}

    @api.post(
        "/api/tasks/",
        response_model=TaskResponse,
        status_code=status.HTTP_202_ACCEPTED,
        responses={
            200: {"model": TaskResponse, "description": "Finished (`?wait=true`)"},
            **ERRORS,
        },
    )
    async def create_task(
        self,
        request: ScriptRequest,
        response: Response,
        wait: Annotated[bool, Query(description="Wait for the script (bounded).")] = False,
    ) -> TaskResponse:
        """Accept a script request; 202 + Location, or 200 with the finished task if `wait`."""
        if len(request.prompt) > self.settings.max_prompt_chars:
            raise FieldError(
                "body.prompt",
                f"is {len(request.prompt)} characters; the limit is "
                f"{self.settings.max_prompt_chars}",
            )
        task = await self.tasks.submit(request)
        task_id = task["task_id"]
        response.headers["Location"] = f"/api/tasks/{task_id}"
        if wait:
            await self.tasks.wait(task_id, self.settings.sync_wait_timeout_s)
            task = await self.store.get.remote(task_id) or task
            if task["status"] in (TaskStatus.COMPLETED, TaskStatus.FAILED):
                response.status_code = status.HTTP_200_OK
        return to_task_response(task)

    @api.get("/api/tasks/{task_id}", response_model=TaskResponse, responses=ERRORS)
    async def get_task(self, task_id: str) -> TaskResponse:
        task = await self.store.get.remote(task_id)
        if task is None:
            raise HTTPException(404, f"no task with id {task_id!r}")
        return to_task_response(task)

    @api.get("/api/tasks/", response_model=TaskList, responses=ERRORS)
    async def list_tasks(
        self,
        status: TaskStatus | None = None,
        skip: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> TaskList:
        tasks, total = await self.store.list_tasks.remote(
            status.value if status else None, skip, limit
        )
        return TaskList(
            items=[to_task_response(t) for t in tasks], total=total, skip=skip, limit=limit
        )

    @api.delete("/api/tasks/{task_id}", status_code=204, responses=ERRORS)
    async def delete_task(self, task_id: str) -> Response:
        if not await self.store.delete.remote(task_id):
            raise HTTPException(404, f"no task with id {task_id!r}")
        return Response(status_code=204)
