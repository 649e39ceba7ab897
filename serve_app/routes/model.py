"""/api/model: a model's status over all its replicas, every served model's state, and loading
or unloading a model (admin). `?model=<id>` picks the model (none = the default one)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query

from serve_app.errors import FieldError
from serve_app.model_registry import SHORTHAND_DEPLOYMENT, UnknownModel, deployment_name
from serve_app.model_status import LIFECYCLE_TIMEOUT_S, STATUS_TIMEOUT_S, every_replica
from serve_app.protocol import ModelStatus
from serve_app.replica import IngressReplica
from serve_app.routes.common import ADMIN_KEY, API_KEY, Replica, documented_errors

router = APIRouter(prefix="/api/model", tags=["model"])

MODEL_QUERY = "query.model"
ModelId = Annotated[
    str | None,
    Query(
        description="Id of the model (GET /v1/models lists them); none = the default model.",
        max_length=256,
    ),
]


@router.get(
    "/status",
    response_model=ModelStatus,
    responses=documented_errors(404, 503),
    dependencies=API_KEY,
)
async def model_status(replica: Replica, model: ModelId = None) -> dict[str, Any]:
    """The model's status over every replica (`replicas`) and their sum, with every served
    model's state in `models`; 503 when none of its replicas answers."""
    return await _model_status(replica, "status", model)


@router.post(
    "/load",
    response_model=ModelStatus,
    responses=documented_errors(403, 503),
    dependencies=ADMIN_KEY,
)
async def load_model(replica: Replica, model: ModelId = None) -> dict[str, Any]:
    """Load the model on every one of its replicas (admin)."""
    return await _model_status(replica, "load", model)


@router.post(
    "/unload",
    response_model=ModelStatus,
    responses=documented_errors(403, 503),
    dependencies=ADMIN_KEY,
)
async def unload_model(replica: Replica, model: ModelId = None) -> dict[str, Any]:
    """Free the model's memory on every one of its replicas; its scripts come from the fallback
    until it is loaded (admin)."""
    return await _model_status(replica, "unload", model)


async def _model_status(replica: IngressReplica, method: str, model: str | None) -> dict[str, Any]:
    models = replica.models
    try:
        model_id = models.resolve(model)
    except UnknownModel as error:
        raise FieldError(MODEL_QUERY, str(error)) from None
    timeout_s = STATUS_TIMEOUT_S if method == "status" else LIFECYCLE_TIMEOUT_S
    status, scripts, *others = await asyncio.gather(
        every_replica(models.handle(model_id), method, timeout_s),
        replica.store.source_counts(),
        *(_state_of(replica, other) for other in models.ids() if other != model_id),
    )
    if model_id == models.default_id:
        replica.model_health.forget()  # /health on this replica tells what was just seen or done
    states = {model_id: _served(replica, model_id, status), **dict(others)}
    return {
        **status,
        "scripts": scripts,
        "cache": replica.pipeline.cache_stats(),
        "model": model_id,
        "models": [states[other] for other in models.ids()],
    }


async def _state_of(replica: IngressReplica, model_id: str) -> tuple[str, dict[str, Any]]:
    try:
        status = await every_replica(replica.models.handle(model_id), "status")
    except Exception as error:  # HTTPException 503: none of its replicas answered
        detail = getattr(error, "detail", None) or repr(error)
        return model_id, {**_served(replica, model_id, None), "reason": str(detail)[:500]}
    return model_id, _served(replica, model_id, status)


def _served(replica: IngressReplica, model_id: str, status: dict[str, Any] | None) -> dict:
    shorthand = not replica.settings.models
    return {
        "id": model_id,
        "deployment": SHORTHAND_DEPLOYMENT if shorthand else deployment_name(model_id),
        "default": model_id == replica.models.default_id,
        "loaded": bool(status and status["loaded"]),
        "reason": status["reason"] if status else None,
        "replicas": len(status["replicas"]) if status else 0,
    }
