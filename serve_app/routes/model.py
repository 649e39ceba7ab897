"""/api/model: the model's status over all its replicas, and loading or unloading it (admin)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from serve_app.model_status import LIFECYCLE_TIMEOUT_S, STATUS_TIMEOUT_S, every_replica
from serve_app.protocol import ModelStatus
from serve_app.replica import IngressReplica
from serve_app.routes.common import ADMIN_KEY, API_KEY, Replica, documented_errors

router = APIRouter(prefix="/api/model", tags=["model"])


@router.get(
    "/status",
    response_model=ModelStatus,
    responses=documented_errors(404, 503),
    dependencies=API_KEY,
)
async def model_status(replica: Replica) -> dict[str, Any]:
    """Every model replica's status (`replicas`) and their sum; 503 when none answers."""
    return await _model_status(replica, "status")


@router.post(
    "/load",
    response_model=ModelStatus,
    responses=documented_errors(403, 503),
    dependencies=ADMIN_KEY,
)
async def load_model(replica: Replica) -> dict[str, Any]:
    """Load the model on every model replica (admin)."""
    return await _model_status(replica, "load")


@router.post(
    "/unload",
    response_model=ModelStatus,
    responses=documented_errors(403, 503),
    dependencies=ADMIN_KEY,
)
async def unload_model(replica: Replica) -> dict[str, Any]:
    """Free the model's memory on every model replica; scripts come from the fallback until it
    is loaded (admin)."""
    return await _model_status(replica, "unload")


async def _model_status(replica: IngressReplica, method: str) -> dict[str, Any]:
    timeout_s = STATUS_TIMEOUT_S if method == "status" else LIFECYCLE_TIMEOUT_S
    model, scripts = await asyncio.gather(
        every_replica(replica.chat, method, timeout_s),
        replica.store.source_counts(),
    )
    replica.model_health.forget()  # /health on this replica tells what was just seen or done
    return {**model, "scripts": scripts, "cache": replica.pipeline.cache_stats()}
