"""The HTTP front door: thin FastAPI routes that delegate to the task runner and deployments."""

import asyncio
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Response, status
from fastapi.exceptions import HTTPException
from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.storyboard.fallback import warm_up
from serve_app.config import Settings
from serve_app.errors import error_response, install_error_handlers
from serve_app.middleware import CORSFromSettingsMiddleware, RequestContextMiddleware
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
from serve_app.security import (
    AccessPolicy,
    check_prompt_limits,
    require_admin_key,
    require_api_key,
)
from serve_app.tasks import TaskRunner, is_finished, to_task_response

STATUS_TIMEOUT_S = 5.0
MAX_SKIP = 1_000_000_000  # SQLite OFFSET is a 64-bit integer; larger is a 422, not a 500
DISCONNECTED = "cancelled: the client disconnected from ?wait=true before the script was ready"


def documented_errors(*codes: int) -> dict[int, dict[str, Any]]:
    """The error responses a route may give, for /docs and schema checks (all one shape)."""
    return {code: {"model": ErrorResponse} for code in (400, 401, 413, 422, *codes)}


ERRORS = documented_errors(404)
API_KEY = [Depends(require_api_key)]
ADMIN_KEY = [Depends(require_admin_key)]

api = FastAPI(
    title="video-script-serve",
    summary="Storyboard scripts from short prompts, by ChatGLM3-6B with a fallback that always "
    "answers.",
    version="0.1.0",
)
install_error_handlers(api)
# Added before @serve.ingress freezes the app; CORS outermost so error responses carry it too.
api.add_middleware(RequestContextMiddleware)
api.add_middleware(CORSFromSettingsMiddleware)


@serve.deployment(
    name="Ingress",
    max_ongoing_requests=256,
    # Beyond this many waiting for the ingress, Serve's proxy answers 503 at once (a burst on
    # two cores otherwise waits seconds to be told no).
    max_queued_requests=64,
    ray_actor_options={"num_cpus": 0.25},
)
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
        warm_up()  # this replica writes fallbacks too (the model known to be down, or failing)
        self.access_policy = AccessPolicy.from_settings(settings)
        self.pipeline = ScriptPipeline(chat, processor, settings)
        self.tasks = TaskRunner(store, self.pipeline, settings)
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

    @api.get(
        "/api/model/status", response_model=ModelStatus, responses=ERRORS, dependencies=API_KEY
    )
    async def model_status(self) -> dict[str, Any]:
        return await self._model_status(self.chat.status.remote())

    @api.post(
        "/api/model/load",
        response_model=ModelStatus,
        responses=documented_errors(403),
        dependencies=ADMIN_KEY,
    )
    async def load_model(self) -> dict[str, Any]:
        """Load the model on the replica that answers (admin)."""
        return await self._model_status(self.chat.load.remote())

    @api.post(
        "/api/model/unload",
        response_model=ModelStatus,
        responses=documented_errors(403),
        dependencies=ADMIN_KEY,
    )
    async def unload_model(self) -> dict[str, Any]:
        """Free the model's memory; scripts come from the fallback until it is loaded (admin)."""
        return await self._model_status(self.chat.unload.remote())

    async def _model_status(self, model_call) -> dict[str, Any]:
        model, scripts = await asyncio.gather(model_call, self.store.source_counts.remote())
        return {**model, "scripts": scripts, "cache": self.pipeline.cache_stats()}

    @api.post(
        "/api/tasks/",
        response_model=TaskResponse,
        status_code=status.HTTP_202_ACCEPTED,
        responses={
            200: {"model": TaskResponse, "description": "Finished (`?wait=true`)"},
            **documented_errors(503, 504),
        },
        dependencies=API_KEY,
    )
    async def create_task(
        self,
        request: ScriptRequest,
        response: Response,
        wait: Annotated[bool, Query(description="Wait for the script (bounded).")] = False,
    ) -> TaskResponse:
        """Accept a script request; 202 + Location, or 200 with the finished task if `wait`.

        503 + Retry-After when this replica is full (nothing is stored then).
        """
        check_prompt_limits(request.prompt, self.settings)
        task = await self.tasks.submit(request)
        task_id = task["task_id"]
        response.headers["Location"] = f"/api/tasks/{task_id}"
        if wait:
            return await self._finished_task(task, response)
        return to_task_response(task)

    async def _finished_task(self, task: dict[str, Any], response: Response):
        if not is_finished(task):
            task = await self._wait_for(task)
        if self._deadline_expired(task) and self.settings.sync_deadline_response == "504":
            return error_response(
                504,
                f"no LLM script within {self.settings.generation_timeout_s:g} s; the task was "
                "completed by the fallback",
                headers={"Location": response.headers["Location"]},
            )
        if is_finished(task):
            response.status_code = status.HTTP_200_OK
        return to_task_response(task)

    async def _wait_for(self, task: dict[str, Any]) -> dict[str, Any]:
        task_id = task["task_id"]
        try:
            finished = await self.tasks.wait(task_id, self.settings.sync_wait_timeout_s)
        except asyncio.CancelledError:  # Serve cancels the route when the client disconnects
            self.tasks.cancel(task_id, DISCONNECTED)
            raise
        return finished or await self.store.get.remote(task_id) or task

    @staticmethod
    def _deadline_expired(task: dict[str, Any]) -> bool:
        return (task["fallback_reason"] or "").startswith("timeout")

    @api.get(
        "/api/tasks/{task_id}", response_model=TaskResponse, responses=ERRORS, dependencies=API_KEY
    )
    async def get_task(self, task_id: str) -> TaskResponse:
        task = await self.store.get.remote(task_id)
        if task is None:
            raise HTTPException(404, f"no task with id {task_id!r}")
        return to_task_response(task)

    @api.get("/api/tasks/", response_model=TaskList, responses=ERRORS, dependencies=API_KEY)
    async def list_tasks(
        self,
        status: TaskStatus | None = None,
        skip: Annotated[int, Query(ge=0, le=MAX_SKIP)] = 0,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> TaskList:
        tasks, total = await self.store.list_tasks.remote(
            status.value if status else None, skip, limit
        )
        return TaskList(
            items=[to_task_response(t) for t in tasks], total=total, skip=skip, limit=limit
        )

    @api.delete("/api/tasks/{task_id}", status_code=204, responses=ERRORS, dependencies=API_KEY)
    async def delete_task(self, task_id: str) -> Response:
        if not await self.store.delete.remote(task_id):
            raise HTTPException(404, f"no task with id {task_id!r}")
        return Response(status_code=204)
