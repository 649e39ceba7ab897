"""The ingress replica serving the current request.

Routes, middleware and dependencies are defined at import time, before any replica (and its
Settings) exists, so they reach the replica's settings and services per request through here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ray import serve

if TYPE_CHECKING:
    from ray.serve.handle import DeploymentHandle

    from serve_app.config import Settings
    from serve_app.edit_jobs import EditRunner
    from serve_app.model_registry import ModelRegistry
    from serve_app.openai.serving import OpenAIServing
    from serve_app.pipeline import ScriptPipeline
    from serve_app.routes.health import ModelHealth
    from serve_app.security import AccessPolicy
    from serve_app.store_client import StoreClient
    from serve_app.tasks import TaskRunner


class IngressReplica(Protocol):
    """What an ingress replica offers its routes (serve_app/ingress.py builds it)."""

    settings: Settings
    access_policy: AccessPolicy
    chat: DeploymentHandle  # the default model's deployment
    models: ModelRegistry  # every model's, by id
    store: StoreClient
    pipeline: ScriptPipeline
    tasks: TaskRunner
    edits: EditRunner
    model_health: ModelHealth
    openai: OpenAIServing


def ingress_replica() -> IngressReplica:
    return serve.get_replica_context().servable_object
