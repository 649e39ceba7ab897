"""Who may call what: API keys, admin keys (prompt limits: serve_app/limits.py).

Keys stay `SecretStr` until the moment of comparison and are compared with
`hmac.compare_digest` against every configured key, so neither logs nor timing reveal them.
No keys configured means authentication is off (local development); `/health` and the docs
are always open.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from serve_app.config import Settings
from serve_app.replica import ingress_replica

BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}

bearer_scheme = HTTPBearer(auto_error=False, description="An API key (see VSS_API_KEYS).")


class AccessPolicy:
    """The keys one ingress replica accepts; admin keys are valid on every route."""

    def __init__(self, api_keys: Iterable[SecretStr], admin_keys: Iterable[SecretStr]):
        self._admin_keys = [key.get_secret_value().encode() for key in admin_keys]
        self._keys = [key.get_secret_value().encode() for key in api_keys] + self._admin_keys

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessPolicy:
        keys = list(settings.api_keys)
        if settings.api_key_file is not None:
            keys += read_key_file(settings.api_key_file)
        return cls(keys, settings.admin_api_keys)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def accepts(self, key: str) -> bool:
        return matches_any(key, self._keys)

    def accepts_admin(self, key: str) -> bool:
        return matches_any(key, self._admin_keys)


def read_key_file(path: Path) -> list[SecretStr]:
    """One key per line; blank lines and `#` comments ignored. A missing file stops the replica."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return [SecretStr(line) for line in lines if line and not line.startswith("#")]


def matches_any(candidate: str, keys: list[bytes]) -> bool:
    """Constant-time membership: every key is compared, with no early exit."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(candidate.encode(), key)
    return found


async def replica_access_policy() -> AccessPolicy:
    """The policy of the ingress replica serving this request (built from its Settings)."""
    return ingress_replica().access_policy


def presented_key(
    policy: AccessPolicy, credentials: HTTPAuthorizationCredentials | None
) -> str | None:
    """The bearer key of the request, None when authentication is off; 401 when it is wrong."""
    if not policy.enabled:
        return None
    if credentials is None:
        raise HTTPException(
            401, "missing API key: send `Authorization: Bearer <key>`", BEARER_CHALLENGE
        )
    if not policy.accepts(credentials.credentials):
        raise HTTPException(401, "invalid API key", BEARER_CHALLENGE)
    return credentials.credentials


ReplicaPolicy = Annotated[AccessPolicy, Depends(replica_access_policy)]
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


async def require_api_key(policy: ReplicaPolicy, credentials: BearerCredentials) -> None:
    presented_key(policy, credentials)


async def require_admin_key(policy: ReplicaPolicy, credentials: BearerCredentials) -> None:
    key = presented_key(policy, credentials)
    if key is not None and not policy.accepts_admin(key):
        raise HTTPException(403, "this route needs an admin key (see VSS_ADMIN_API_KEYS)")
