"""The task store: one interface (TaskStore), two backends (SQLite, PostgreSQL), one schema
kept by Alembic migrations. README, "Task store", says which to choose and how to set it."""

from serve_app.store.database import SchemaTooNew, UnsupportedStoreUrl, head_revision, safe_url
from serve_app.store.tasks import TaskIdTaken, TaskStore, row_to_task

__all__ = [
    "SchemaTooNew",
    "TaskIdTaken",
    "TaskStore",
    "UnsupportedStoreUrl",
    "head_revision",
    "row_to_task",
    "safe_url",
]
