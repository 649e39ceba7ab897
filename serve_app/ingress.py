"""The HTTP front door: the FastAPI app (routes per resource in serve_app/routes/) and the
Ingress deployment whose replicas hold what those routes delegate to."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.storyboard.fallback import warm_up
from serve_app.config import Settings
from serve_app.edit_jobs import EditRunner, model_check_of
from serve_app.errors import install_error_handlers
from serve_app.metrics import report_unfinished_tasks
from serve_app.middleware import CORSFromSettingsMiddleware, RequestContextMiddleware
from serve_app.model_registry import ModelRegistry
from serve_app.openai.serving import OpenAIServing
from serve_app.pipeline import ScriptPipeline
from serve_app.routes import events, exports, health, model, playground, scenes, tasks
from serve_app.routes import openai as openai_routes
from serve_app.routes.health import ModelHealth
from serve_app.security import AccessPolicy
from serve_app.tasks import TaskRunner

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
for resource in (health, model, tasks, events, scenes, exports):
    api.include_router(resource.router)
api.mount("/v1", openai_routes.v1)  # OpenAI's error shape and status codes (routes/openai.py)
api.include_router(playground.router)  # GET /: the playground page, its files under /static
api.mount(playground.STATIC_PATH, playground.static_files, name="static")


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
    """One replica's services (serve_app/replica.py says what the routes may use)."""

    async def __init__(
        self,
        chats: dict[str, DeploymentHandle],
        processor: DeploymentHandle,
        store: DeploymentHandle,
        settings: Settings,
    ):
        self.models = ModelRegistry(settings, chats)  # each model's deployment, by id
        self.chat = self.models.handle(None)  # the default model's
        self.settings = settings
        warm_up()  # this replica writes fallbacks too (the model known to be down, or failing)
        self.access_policy = AccessPolicy.from_settings(settings)
        self.pipeline = ScriptPipeline(self.models, processor, settings)
        self.tasks = TaskRunner(store, self.pipeline, settings)
        self.store = self.tasks.store
        self.model_health = ModelHealth(self.chat)
        self.openai = OpenAIServing(self.models, settings)
        self.tasks.start_background_work()
        self.edits = EditRunner(
            self.store,
            self.pipeline,
            settings,
            model_check_of(self.model_health.status),
            lambda: self.tasks.unfinished,
        )
        self.edits.start_background_work()
        self._report_unfinished = asyncio.create_task(
            report_unfinished_tasks(lambda: self.tasks.unfinished)
        )
