"""Baseline: the task store as the SQLite-only TaskStore left it (before Alembic).

A database that already has these tables (a file written by that TaskStore, which added its
columns on open) keeps every row: only what is missing is added, and the script counters are
made (and counted once from the stored scripts) only when they are absent. Frozen: later schema
changes are new revisions, never edits here.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

COLUMNS = (
    ("task_id", sa.Text, {"primary_key": True}),
    ("status", sa.Text, {"nullable": False}),
    ("progress", sa.Integer, {"nullable": False, "server_default": sa.text("0")}),
    ("request_json", sa.Text, {"nullable": False}),
    ("result_json", sa.Text, {}),
    ("source", sa.Text, {}),
    ("fallback_reason", sa.Text, {}),
    ("parse_failures", sa.Integer, {"nullable": False, "server_default": sa.text("0")}),
    ("error", sa.Text, {}),
    ("attempts", sa.Integer, {"nullable": False, "server_default": sa.text("0")}),
    ("worker_id", sa.Text, {}),
    ("lease_until", sa.Double, {}),
    ("created_at", sa.Double, {"nullable": False}),
    ("started_at", sa.Double, {}),
    ("completed_at", sa.Double, {}),
    ("generation_ms", sa.Double, {}),
    ("fallback_template", sa.Text, {}),
    ("notes_json", sa.Text, {}),
    ("owner", sa.Text, {}),
    ("idempotency_key", sa.Text, {}),
    ("request_digest", sa.Text, {}),
    ("revision", sa.Integer, {}),
    ("revision_source", sa.Text, {}),
    ("revision_note", sa.Text, {}),
)
INDEXES = (
    "CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (status, created_at)",
    "CREATE INDEX IF NOT EXISTS tasks_by_created ON tasks (created_at)",
    "CREATE INDEX IF NOT EXISTS tasks_by_owner ON tasks (owner, created_at)",
    "CREATE INDEX IF NOT EXISTS tasks_by_completion ON tasks (completed_at)"
    " WHERE completed_at IS NOT NULL",
    # one task per (owner, Idempotency-Key): concurrent requests with one key store one task
    "CREATE UNIQUE INDEX IF NOT EXISTS tasks_by_idempotency_key"
    " ON tasks (COALESCE(owner, ''), idempotency_key) WHERE idempotency_key IS NOT NULL",
)
SQLITE_REVISIONS_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS revisions_go_with_their_task AFTER DELETE ON tasks BEGIN
    DELETE FROM revisions WHERE task_id = OLD.task_id;
END
"""
SQLITE_COUNTER_TRIGGER = """
CREATE TRIGGER {name} AFTER {event} ON tasks WHEN {condition} BEGIN
    INSERT INTO script_counts (name, value) VALUES (NEW.source, 1)
        ON CONFLICT (name) DO UPDATE SET value = value + 1;
    UPDATE script_counts SET value = value + NEW.parse_failures WHERE name = 'parse_failures';
END
"""
POSTGRES_COUNTER_FUNCTION = """
CREATE FUNCTION count_stored_script() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO script_counts (name, value) VALUES (NEW.source, 1)
        ON CONFLICT (name) DO UPDATE SET value = script_counts.value + 1;
    UPDATE script_counts SET value = value + NEW.parse_failures WHERE name = 'parse_failures';
    RETURN NULL;
END
$$
"""
POSTGRES_COUNTER_TRIGGER = (
    "CREATE TRIGGER {name} AFTER {event} ON tasks FOR EACH ROW WHEN ({condition})"
    " EXECUTE FUNCTION count_stored_script()"
)
TRIGGERS = (
    ("count_scripts_stored_finished", "INSERT", "NEW.source IS NOT NULL"),
    (
        "count_scripts_completed",
        "UPDATE OF source",
        "NEW.source IS NOT NULL AND OLD.source IS NULL",
    ),
)
COUNT_STORED_SCRIPTS = (
    "INSERT INTO script_counts (name, value) SELECT source, COUNT(*) FROM tasks"
    " WHERE source IS NOT NULL GROUP BY source",
    "INSERT INTO script_counts (name, value) SELECT 'parse_failures',"
    " COALESCE(SUM(parse_failures), 0) FROM tasks WHERE source IS NOT NULL",
)


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    inspector = sa.inspect(bind)
    if not inspector.has_table("tasks"):
        op.create_table("tasks", *(sa.Column(name, kind, **kw) for name, kind, kw in COLUMNS))
    else:  # a file from before Alembic: add what its TaskStore version had not added yet
        present = {column["name"] for column in inspector.get_columns("tasks")}
        for name, kind, options in COLUMNS:
            if name not in present:
                op.add_column("tasks", sa.Column(name, kind, **options))
    for statement in INDEXES:
        op.execute(statement)
    if not inspector.has_table("revisions"):
        op.create_table(
            "revisions",
            sa.Column(
                "task_id",
                sa.Text,
                # PostgreSQL: revisions go with their task by the foreign key; SQLite: a trigger
                *([sa.ForeignKey("tasks.task_id", ondelete="CASCADE")] if postgres else []),
                primary_key=True,
            ),
            sa.Column("revision", sa.Integer, primary_key=True),
            sa.Column("script_json", sa.Text, nullable=False),
            sa.Column("source", sa.Text, nullable=False),
            sa.Column("note", sa.Text),
            sa.Column("created_at", sa.Double, nullable=False),
        )
    if not postgres:
        op.execute(SQLITE_REVISIONS_TRIGGER)
    if not inspector.has_table("script_counts"):
        op.create_table(
            "script_counts",
            sa.Column("name", sa.Text, primary_key=True),
            sa.Column("value", sa.Integer, nullable=False, server_default=sa.text("0")),
        )
        if postgres:
            op.execute(POSTGRES_COUNTER_FUNCTION)
        template = POSTGRES_COUNTER_TRIGGER if postgres else SQLITE_COUNTER_TRIGGER
        for name, event, condition in TRIGGERS:
            op.execute(template.format(name=name, event=event, condition=condition))
        for statement in COUNT_STORED_SCRIPTS:
            op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the baseline is not undone; restore a backup instead")
