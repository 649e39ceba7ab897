"""What every route module shares: the replica dependency, key checks, documented errors."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends

from serve_app.protocol import ErrorResponse
from serve_app.replica import IngressReplica, ingress_replica
from serve_app.security import CallerOfRequest, require_admin_key, require_api_key

__all__ = ["ADMIN_KEY", "API_KEY", "CallerOfRequest", "Replica", "documented_errors"]


async def replica() -> IngressReplica:
    """The ingress replica serving this request (async: no thread hop for an attribute read)."""
    return ingress_replica()


Replica = Annotated[IngressReplica, Depends(replica)]
API_KEY = [Depends(require_api_key)]
ADMIN_KEY = [Depends(require_admin_key)]


def documented_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error responses a route may give, for /docs and schema checks (all one shape)."""
    return {code: {"model": ErrorResponse} for code in (400, 401, 413, 422, *codes)}
