"""The SQLite task store's deployment: the single writer of the file every ingress replica
shares (with PostgreSQL there is none: each ingress replica opens its own pool, see
serve_app/store/target.py).

The store itself, the same on both backends, is serve_app/store/ (TaskStore: leases and
adoption, idempotency, ownership, revisions, retention, counters; the schema kept by Alembic).
"""

from __future__ import annotations

from ray import serve

from deployments.replica_options import SYNC_METHODS_ON_THE_EVENT_LOOP
from serve_app.store import TaskStore, row_to_task

__all__ = ["TaskStore", "TaskStoreDeployment", "row_to_task"]

# The one writer of the SQLite file: a single replica by design (see README, "Task store").
TaskStoreDeployment = serve.deployment(
    name="TaskStore",
    num_replicas=1,
    max_ongoing_requests=256,
    ray_actor_options={"num_cpus": 0.1, "runtime_env": SYNC_METHODS_ON_THE_EVENT_LOOP},
)(TaskStore)
