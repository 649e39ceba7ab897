"""Who may call what: API keys, admin keys (prompt limits: serve_app/limits.py).

Keys stay `SecretStr` until the moment of comparison and are compared with
`hmac.compare_digest` against every configured key, so neither logs nor timing reveal them.
No keys configured means authentication is off (local development, on a loopback address only
unless `allow_unauthenticated`); `/health` and the docs are always open. A task is owned by the
key that created it, recorded as a key id (a keyed hash, never the key); admin keys see every
task. The key file is read again whenever its modification time or size changes.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from serve_app.config import Settings
from serve_app.replica import ingress_replica

logger = logging.getLogger("ray.serve")

BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}
# Domain separation for key ids: a stored owner never equals a hash found for the key elsewhere.
KEY_ID_SALT = b"video-script-serve/task-owner/v1"
KEY_ID_HEX_CHARS = 24  # 96 bits: no two keys of one deployment share an id

bearer_scheme = HTTPBearer(auto_error=False, description="An API key (see VSS_API_KEYS).")


class AccessPolicy:
    """The keys one ingress replica accepts; admin keys are valid on every route.

    Authentication is on when any key is configured or a key file is named (an empty key file
    then admits nobody: it never turns authentication off).
    """

    def __init__(
        self,
        api_keys: Iterable[SecretStr],
        admin_keys: Iterable[SecretStr],
        key_file: Path | None = None,
    ):
        self._admin_keys = [key.get_secret_value().encode() for key in admin_keys]
        self._inline_keys = [key.get_secret_value().encode() for key in api_keys]
        self._key_file = key_file
        self._file_keys: list[bytes] = []
        self._file_stamp: tuple[int, int] | None = None
        self._reload_lock = threading.Lock()
        if key_file is not None:
            self._file_keys = _encoded(read_key_file(key_file))  # missing file: no replica
            self._file_stamp = file_stamp(key_file)

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessPolicy:
        return cls(settings.api_keys, settings.admin_api_keys, settings.api_key_file)

    @property
    def enabled(self) -> bool:
        return bool(self._inline_keys or self._admin_keys) or self._key_file is not None

    def accepts(self, key: str) -> bool:
        return matches_any(key, self._inline_keys + self._current_file_keys() + self._admin_keys)

    def accepts_admin(self, key: str) -> bool:
        return matches_any(key, self._admin_keys)

    def _current_file_keys(self) -> list[bytes]:
        """The key file's keys, read again when its mtime or size changed since the last read.
        A file that vanished or cannot be read keeps the keys last read (and says so)."""
        if self._key_file is None:
            return []
        try:
            stamp = file_stamp(self._key_file)
            if stamp != self._file_stamp:
                with self._reload_lock:
                    if stamp != self._file_stamp:
                        self._file_keys = _encoded(read_key_file(self._key_file))
                        self._file_stamp = stamp
                        logger.info("API key file reloaded: %d keys", len(self._file_keys))
        except OSError as error:
            logger.warning("API key file unreadable, keeping the keys last read: %r", error)
        return self._file_keys


def file_stamp(path: Path) -> tuple[int, int]:
    status = os.stat(path)
    return status.st_mtime_ns, status.st_size


def _encoded(keys: list[SecretStr]) -> list[bytes]:
    return [key.get_secret_value().encode() for key in keys]


def key_id(key: str) -> str:
    """Who owns a task: a keyed hash of the key that created it, never the key itself."""
    digest = hmac.new(KEY_ID_SALT, key.encode(), hashlib.sha256).hexdigest()
    return digest[:KEY_ID_HEX_CHARS]


@dataclass(frozen=True)
class Caller:
    """Whose tasks a request may see: `owner` is recorded on tasks it creates; `sees_all`
    (admin keys, or no authentication) lifts the owner filter on reads."""

    owner: str | None
    sees_all: bool

    @property
    def owner_filter(self) -> str | None:
        """The owner the store filters by; None = every task."""
        return None if self.sees_all else self.owner


EVERYONE = Caller(owner=None, sees_all=True)


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost: reachable from elsewhere


class InsecureExposure(ValueError):
    """The app would serve /api to the network without any key."""


def refuse_unauthenticated_exposure(settings: Settings, bind_host: str) -> None:
    """InsecureExposure when Serve listens beyond loopback with no keys, unless the settings
    ask for exactly that (`allow_unauthenticated`)."""
    if is_loopback(bind_host) or settings.allow_unauthenticated:
        return
    if AccessPolicy.from_settings(settings).enabled:
        return
    raise InsecureExposure(
        f"refusing to start: Serve's HTTP proxy listens on {bind_host!r} (http_options.host), "
        "which other machines can reach, and no API key is configured, so anyone there could "
        "read and delete every task and unload the model. Fix it with one of: set `api_keys` / "
        "`api_key_file` / `admin_api_keys` in the app args (VSS_API_KEYS, VSS_API_KEY_FILE, "
        "VSS_ADMIN_API_KEYS); bind http_options.host to 127.0.0.1; or, to serve without "
        "authentication on purpose, set `allow_unauthenticated: true` (VSS_ALLOW_UNAUTHENTICATED)."
    )


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


async def calling_owner(policy: ReplicaPolicy, credentials: BearerCredentials) -> Caller:
    """The caller of a task route (401 when its key is missing or wrong)."""
    key = presented_key(policy, credentials)
    if key is None:
        return EVERYONE
    return Caller(owner=key_id(key), sees_all=policy.accepts_admin(key))


async def is_authorized_caller(policy: ReplicaPolicy, credentials: BearerCredentials) -> bool:
    """Whether this request could read /api (a valid key, or authentication off); no 401."""
    if not policy.enabled:
        return True
    return credentials is not None and policy.accepts(credentials.credentials)


CallerOfRequest = Annotated[Caller, Depends(calling_owner)]
AuthorizedCaller = Annotated[bool, Depends(is_authorized_caller)]


async def require_admin_key(policy: ReplicaPolicy, credentials: BearerCredentials) -> None:
    key = presented_key(policy, credentials)
    if key is not None and not policy.accepts_admin(key):
        raise HTTPException(403, "this route needs an admin key (see VSS_ADMIN_API_KEYS)")
