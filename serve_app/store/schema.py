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

# Edit jobs (issue 13, item 4): a regenerate, a written insert or a refine, run under a lease
# like a task (serve_app/store/edits.py); its result is the task's next revision.
edits = Table(
    "edits",
    metadata,
    Column("edit_id", Text, primary_key=True),
    Column("task_id", Text, nullable=False),
    Column("owner", Text),  # the key that asked (its Idempotency-Key's scope)
    Column("kind", Text, nullable=False),  # regenerate, insert, refine
    Column("params_json", Text, nullable=False),  # scene_number, position, instruction
    Column("if_match", Integer),  # the revision it must start from, if the client said
    Column("status", Text, nullable=False),
    Column("worker_id", Text),
    Column("lease_until", Double),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("created_at", Double, nullable=False),
    Column("started_at", Double),
    Column("completed_at", Double),
    Column("revision", Integer),  # the revision it stored
    Column("source", Text),
    Column("note", Text),
    Column("error", Text),
    Column("error_status", Integer),  # the HTTP status ?wait=true answers a failure with
    Column("error_field", Text),  # the field a 422 names
    Column("idempotency_key", Text),
    Column("request_digest", Text),
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
