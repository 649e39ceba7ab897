"""GET /health: whether scripts can be served, and from the model or the fallback only.

Probes come often (load balancers, Kubernetes), so each ingress replica asks the model replica
at most once per HEALTH_CACHE_S and concurrent probes share that call. /health is open to
everyone: callers without a valid key (when keys are configured) see no absolute paths and no
load errors; `/api/model/status` has the detail.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from fastapi import APIRouter
from ray.serve.handle import DeploymentHandle

from serve_app.protocol import HealthResponse
from serve_app.routes.common import Replica
from serve_app.security import AuthorizedCaller

STATUS_TIMEOUT_S = 5.0
HEALTH_CACHE_S = 1.0
NOT_LOADED = "the model is not loaded; GET /api/model/status (with an API key) says why"

router = APIRouter(tags=["health"])


class ModelHealth:
    """The model replica's status, asked at most once per `ttl_s` (a failure is kept as long).
    Hand-written: a dozen lines, where an async TTL-cache library would add a dependency."""

    def __init__(
        self,
        chat: DeploymentHandle,
        ttl_s: float = HEALTH_CACHE_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.chat = chat
        self.ttl_s = ttl_s
        self._clock = clock
        self._asked: asyncio.Future | None = None
        self._asked_at = 0.0

    async def status(self) -> dict[str, Any]:
        now = self._clock()
        if self._asked is None or now - self._asked_at >= self.ttl_s:
            self._asked = asyncio.ensure_future(
                asyncio.wait_for(self.chat.status.remote(), STATUS_TIMEOUT_S)
            )
            self._asked_at = now
        return await asyncio.shield(self._asked)

    def forget(self) -> None:
        """Ask again next time (this replica just loaded or unloaded the model)."""
        self._asked = None


@router.get("/health", response_model=HealthResponse)
async def health(replica: Replica, authorized: AuthorizedCaller) -> HealthResponse:
    """200 whenever scripts can be served; `degraded` means fallback scripts only."""
    try:
        model = await replica.model_health.status()
    except Exception as error:
        answer = HealthResponse(
            status="degraded",
            llm_loaded=False,
            device=None,
            model_path=replica.settings.model_path,
            reason=f"ChatGLM deployment unreachable: {type(error).__name__}",
        )
    else:
        answer = HealthResponse(
            status="ok" if model["loaded"] else "degraded",
            llm_loaded=model["loaded"],
            device=model.get("device"),
            model_path=model["model_path"],
            reason=model["reason"],
        )
    return answer if authorized else without_detail(answer)


def without_detail(answer: HealthResponse) -> HealthResponse:
    """What a caller without a key may see: the model folder's name, not its path; that the
    model is not loaded, not why (a load error can name files and hosts)."""
    reason = answer.reason
    if reason is not None and not reason.startswith("ChatGLM deployment unreachable"):
        reason = NOT_LOADED
    return answer.model_copy(
        update={"model_path": PurePath(answer.model_path).name, "reason": reason}
    )
