"""Where the ingress finds the task store, from the settings.

SQLite: the one TaskStore deployment (serve_app/task_store.py) owns the file and every ingress
replica calls it through its handle, as before. PostgreSQL: no deployment in between; each
ingress replica opens its own pool (`PostgresStore.open`), so writes scale with the ingress and
no Ray actor funnels them. The password is read in the replica when the pool opens: from
`task_store_password_file` (a mounted Secret; read again on every open) or
`task_store_password` (`VSS_TASK_STORE_PASSWORD`), never from or into a log.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy.engine import make_url

from serve_app.store.tasks import TaskStore


def task_store_url(url: str | None, db_path: Path) -> str:
    """`task_store_url`, or the SQLite file `task_db_path` when it is unset (as before it)."""
    return url or f"sqlite:///{db_path}"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path:
    """The file a sqlite:/// URL names, made absolute here (the driver's working directory: a
    replica's may differ)."""
    return Path(make_url(url).database or "").resolve()


@dataclass(frozen=True)
class PostgresStore:
    """What an ingress replica needs to open its own pool on the PostgreSQL task store."""

    url: str
    password: SecretStr | None
    password_file: Path | None
    pool_size: int

    def read_password(self) -> str | None:
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").strip()
        return self.password.get_secret_value() if self.password is not None else None

    def open(self) -> TaskStore:
        """The store on a pool of `pool_size` connections, its schema at this code's version
        (migrated under a lock by whichever replica comes first; SchemaTooNew when newer)."""
        return TaskStore(self.url, password=self.read_password(), pool_size=self.pool_size)


def task_store_for_ingress(settings: Any) -> Any:
    """What the Ingress deployment is bound with (serve_app/app.py): the TaskStore deployment
    on the SQLite file, or a PostgresStore each replica opens its own pool on."""
    url = task_store_url(settings.task_store_url, settings.task_db_path)
    if is_sqlite(url):
        from serve_app.task_store import TaskStoreDeployment

        return TaskStoreDeployment.bind(str(sqlite_path(url)))
    return PostgresStore(
        url,
        settings.task_store_password,
        settings.task_store_password_file,
        settings.task_store_pool_size,
    )


def describe_schema(settings: Any) -> tuple[bool, str]:
    """Whether the task store of `settings` can be used by this code, and why: the database
    answers (PostgreSQL: connection and password) and its schema revision is one this code
    knows. Reads only: nothing is created or migrated (scripts/verify_setup.py)."""
    from serve_app.store.database import (
        create_engine,
        head_revision,
        known_revision,
        safe_url,
        schema_revision,
        store_url,
    )

    url = task_store_url(settings.task_store_url, settings.task_db_path)
    head = head_revision()
    if is_sqlite(url):
        path = sqlite_path(url)
        if not path.exists():
            return True, f"sqlite {path}: not there yet, made at schema {head} on start"
        engine = create_engine(store_url(path))
        where = f"sqlite {path}"
    else:
        store = PostgresStore(
            url, settings.task_store_password, settings.task_store_password_file, 1
        )
        try:
            password = store.read_password()
        except OSError as error:
            return False, f"cannot read task_store_password_file: {error.strerror}"
        engine = create_engine(store_url(url, password), pool_size=1)
        where = safe_url(engine.url)
    try:
        current = schema_revision(engine)
    except Exception as error:  # the driver's reason, first line (never the password)
        reason = str(getattr(error, "orig", None) or error).splitlines()[0][:200]
        return False, f"{where}: cannot connect ({reason})"
    finally:
        engine.dispose()
    if current == head:
        return True, f"{where}: schema {current} (current)"
    if current is None:
        return True, f"{where}: no schema version yet; migrated to {head} on start"
    if not known_revision(current):
        return False, f"{where}: schema {current!r} is newer than this code knows ({head})"
    return True, f"{where}: schema {current}; migrated to {head} on start"
