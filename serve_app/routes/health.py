"""GET /health: whether scripts can be served, and from the model or the fallback only."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from serve_app.protocol import HealthResponse
from serve_app.routes.common import Replica

STATUS_TIMEOUT_S = 5.0

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse)
async def health(replica: Replica) -> HealthResponse:
    """200 whenever scripts can be served; `degraded` means fallback scripts only."""
    try:
        model = await asyncio.wait_for(replica.chat.status.remote(), STATUS_TIMEOUT_S)
    except Exception as error:
        return HealthResponse(
            status="degraded",
            llm_loaded=False,
            device=None,
            model_path=replica.settings.model_path,
            reason=f"ChatGLM deployment unreachable: {type(error).__name__}",
        )
    return HealthResponse(
        status="ok" if model["loaded"] else "degraded",
        llm_loaded=model["loaded"],
        device=model.get("device"),
        model_path=model["model_path"],
        reason=model["reason"],
    )
