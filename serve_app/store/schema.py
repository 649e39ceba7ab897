"""The task store's tables as SQLAlchemy Core objects, the one description the queries use.

The database itself is made and upgraded by the Alembic migrations next to this file
(serve_app/store/migrations); these objects must describe the schema at the newest revision.
Times are Unix seconds (floats) on both backends, as the SQLite store always wrote them.
"""

from __future__ import annotations

from sqlalchemy import Column, Double, Integer, MetaData, Table, Text, text

metadata = MetaData()

tasks = Table(
    "tasks",
    metadata,
    Column("task_id", Text, primary_key=True),
    Column("status", Text, nullable=False),
    Column("progress", Integer, nullable=False, server_default=text("0")),
    Column("request_json", Text, nullable=False),
    Column("result_json", Text),
    Column("source", Text),
    Column("fallback_reason", Text),
    Column("parse_failures", Integer, nullable=False, server_default=text("0")),
    Column("error", Text),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("worker_id", Text),
    Column("lease_until", Double),
    Column("created_at", Double, nullable=False),
    Column("started_at", Double),
    Column("completed_at", Double),
    Column("generation_ms", Double),
    Column("fallback_template", Text),
    Column("notes_json", Text),
    Column("owner", Text),
    Column("idempotency_key", Text),
    Column("request_digest", Text),
    # the latest revision of the script (NULL in rows written before revisions: revision 1)
    Column("revision", Integer),
    Column("revision_source", Text),
    Column("revision_note", Text),
    # Task events (issue 12): the pipeline's stage and the tokens generated so far, written by
    # the runner at stage changes and at most every task_progress_interval_s while generating.
    Column("stage", Text),
    Column("generated_tokens", Integer, nullable=False, server_default=text("0")),
    # Scene events (issue 12): {"draft": n, "scenes": [...]}, the completed scenes of the reply
    # being generated (the n-th reply begun for this task), written with the progress.
    Column("draft_json", Text),
    # Webhooks (issue 12): where to POST the finished task, and how that went.
    Column("callback_url", Text),
    Column("webhook_state", Text),
    Column("webhook_attempts", Integer, nullable=False, server_default=text("0")),
    Column("webhook_last_status", Integer),
    Column("webhook_last_error", Text),
)

revisions = Table(
    "revisions",
    metadata,
    Column("task_id", Text, primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("script_json", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("note", Text),
    Column("created_at", Double, nullable=False),
)

# Scripts written, by path (a row per source, plus 'parse_failures'): lifetime totals kept by
# triggers in the statement that stores a script, so reading them never scans the tasks.
script_counts = Table(
    "script_counts",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", Integer, nullable=False, server_default=text("0")),
)

UNFINISHED = ("pending", "running")
FINISHED = ("completed", "failed")
