"""Alembic's environment for the task store: always run on a connection the store opened
(serve_app/store/migrate.py), inside the transaction that holds the migration lock."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
