"""The ingress side of the task store: its calls, with every outage turned into one error.

With SQLite the calls go to the TaskStore deployment; with PostgreSQL to this replica's own
pool (serve_app/store/target.py), in a thread per call, at most `task_store_pool_size` at once.
Either can be away for a moment (the store's replica dead and being replaced, the disk full,
the SQLite file locked, the PostgreSQL server restarting). Routes must then answer 503 +
Retry-After, never 500, so each call here turns those failures into StoreUnavailable
(serve_app/errors.py maps it), and a call that hangs gives up after STORE_CALL_TIMEOUT_S.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy.exc
from ray.exceptions import RayActorError
from ray.serve.exceptions import (
    BackPressureError,
    DeploymentUnavailableError,
    ReplicaUnavailableError,
)
from ray.serve.handle import DeploymentHandle
from starlette.exceptions import HTTPException

from serve_app.errors import StoreUnavailable
from serve_app.store import TaskStore
from serve_app.store.target import PostgresStore

STORE_CALL_TIMEOUT_S = 15.0  # statements take milliseconds; longer = the store is away
# What "the store cannot answer now" looks like from here. sqlite3's errors arrive wrapped as
# RayTaskError(OperationalError), which is an OperationalError too.
STORE_OUTAGES = (
    RayActorError,  # the replica died, or is unreachable (ActorDiedError, ActorUnavailableError)
    BackPressureError,
    DeploymentUnavailableError,
    ReplicaUnavailableError,
    sqlite3.OperationalError,  # disk full, database locked, read-only, I/O error
    # SQLAlchemy's: the same sqlite3 errors, PostgreSQL down or restarting (connection refused,
    # terminated by the administrator), every pooled connection busy past the pool timeout
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    TimeoutError,
)


class StoreClient:
    """Awaitable calls to the task store (serve_app/store/tasks.py has the methods): the
    TaskStore deployment's handle (SQLite), or a PostgresStore this replica opens a pool on."""

    def __init__(self, store: DeploymentHandle | PostgresStore, retry_after_s: int):
        self.retry_after_s = retry_after_s
        self.local: TaskStore | None = None
        if isinstance(store, PostgresStore):
            self.local = store.open()
            self._threads = ThreadPoolExecutor(store.pool_size, thread_name_prefix="task-store")
        else:
            self.handle = store

    async def call(self, method: str, *args: Any) -> Any:
        if self.local is not None:
            call = functools.partial(getattr(self.local, method), *args)
            response = asyncio.get_running_loop().run_in_executor(self._threads, call)
        else:
            response = getattr(self.handle, method).remote(*args)
        try:
            return await asyncio.wait_for(response, STORE_CALL_TIMEOUT_S)
        except STORE_OUTAGES as error:
            if isinstance(error, TimeoutError) and self.local is None:
                response.cancel()
            raise StoreUnavailable(
                f"the task store is unavailable ({_describe(error)}); retry later",
                self.retry_after_s,
            ) from error

    async def create_running(self, *args: Any) -> dict[str, Any]:
        return await self.call("create_running", *args)

    async def create_completed(self, *args: Any) -> dict[str, Any]:
        return await self.call("create_completed", *args)

    async def get(
        self, task_id: str, owner: str | None = None, revision: int | None = None
    ) -> dict[str, Any] | None:
        """The task showing `revision` of its script (None: the latest); None when `owner` may
        not see it; RevisionNotFound (a 404 naming it) when it never had that revision."""
        task = await self.call("get", task_id, owner, revision)
        if task is not None and task.get("unknown_revision") is not None:
            raise RevisionNotFound(task_id, revision)
        return task

    async def list_revisions(
        self, task_id: str, owner: str | None = None
    ) -> list[dict[str, Any]] | None:
        return await self.call("list_revisions", task_id, owner)

    async def add_revision(
        self,
        task_id: str,
        owner: str | None,
        script: dict[str, Any],
        source: str,
        note: str,
        base_revision: int,
    ) -> tuple[str, dict[str, Any] | None]:
        return await self.call("add_revision", task_id, owner, script, source, note, base_revision)

    async def list_tasks(
        self, status: str | None, skip: int, limit: int, owner: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        return await self.call("list_tasks", status, skip, limit, owner)

    async def delete(self, task_id: str, owner: str | None = None) -> bool:
        return await self.call("delete", task_id, owner)

    async def cancel(
        self, task_id: str, reason: str, owner: str | None = None
    ) -> tuple[str, dict[str, Any] | None]:
        return await self.call("cancel", task_id, reason, owner)

    async def start(self, task_id: str, worker_id: str, lease_s: float) -> dict[str, Any] | None:
        return await self.call("start", task_id, worker_id, lease_s)

    async def renew_lease(self, task_id: str, worker_id: str, lease_s: float) -> bool:
        return await self.call("renew_lease", task_id, worker_id, lease_s)

    async def complete(
        self, task_id: str, worker_id: str, outcome: dict[str, Any]
    ) -> dict[str, Any] | None:
        return await self.call("complete", task_id, worker_id, outcome)

    async def fail(self, task_id: str, error: str) -> dict[str, Any] | None:
        return await self.call("fail", task_id, error)

    async def adopt_orphans(
        self, worker_id: str, lease_s: float, max_attempts: int, limit: int
    ) -> list[dict[str, Any]]:
        return await self.call("adopt_orphans", worker_id, lease_s, max_attempts, limit)

    async def purge_finished_before(self, cutoff: float, limit: int) -> int:
        return await self.call("purge_finished_before", cutoff, limit)

    async def source_counts(self) -> dict[str, int]:
        return await self.call("source_counts")


class RevisionNotFound(HTTPException):
    """The task exists but never had this revision: a 404 (in the one error shape) naming it."""

    def __init__(self, task_id: str, revision: int | None):
        super().__init__(404, f"task {task_id!r} has no revision {revision}")
        self.task_id = task_id
        self.revision = revision


def _describe(error: BaseException) -> str:
    """A short cause for the client: the kind of failure, without paths or tracebacks."""
    if isinstance(error, sqlalchemy.exc.DBAPIError):  # the driver's message, not the SQL
        return f"database: {str(error.orig).splitlines()[0][:120] if error.orig else ''}"
    if isinstance(error, sqlite3.OperationalError):
        cause = getattr(error, "cause", None) or error  # RayTaskError: the original error
        return f"database: {str(cause)[:120]}"
    if isinstance(error, TimeoutError):
        return f"no answer within {STORE_CALL_TIMEOUT_S:g} s"
    return type(error).__name__
