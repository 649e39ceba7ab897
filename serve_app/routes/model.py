"""/api/model: the model's status, and loading or unloading it (admin)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

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
    return await _model_status(replica, replica.chat.status.remote())


@router.post(
    "/load", response_model=ModelStatus, responses=documented_errors(403), dependencies=ADMIN_KEY
)
async def load_model(replica: Replica) -> dict[str, Any]:
    """Load the model on the replica that answers (admin)."""
    return await _model_status(replica, replica.chat.load.remote())


@router.post(
    "/unload",
    response_model=ModelStatus,
    responses=documented_errors(403),
    dependencies=ADMIN_KEY,
)
async def unload_model(replica: Replica) -> dict[str, Any]:
    """Free the model's memory; scripts come from the fallback until it is loaded (admin)."""
    return await _model_status(replica, replica.chat.unload.remote())


async def _model_status(replica: IngressReplica, model_call) -> dict[str, Any]:
    model, scripts = await asyncio.gather(model_call, replica.store.source_counts())
    replica.model_health.forget()  # /health on this replica tells what was just seen or done
    return {**model, "scripts": scripts, "cache": replica.pipeline.cache_stats()}
