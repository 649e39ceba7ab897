"""Task creates per second, and their latency, on SQLite and PostgreSQL at 1, 16 and 64
concurrent clients, in one run.

    .venv/bin/python scripts/bench_task_store.py [--tasks 2000] [--clients 1 16 64]
        [--dir /var/lib/...] [--postgres-url postgresql://user@host/db]

(the password of --postgres-url from VSS_TASK_STORE_PASSWORD).

Each create is one committed `create_running` (as the ingress makes on every accepted task),
called from `clients` threads at once on one TaskStore object: SQLite with its one connection
(synchronous=FULL, the single writer, as the TaskStore deployment), PostgreSQL with a pool of
`clients` connections (as that many ingress replicas' pools together). Without --postgres-url
a private PostgreSQL server is started (initdb/pg_ctl as the tests do, fsync ON) in --dir and
stopped afterwards. The Ray hop in front of the SQLite store is not included. Run it on the
disk that will hold the database: fsync cost is the disk's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from serve_app.store import TaskStore

REQUEST = {"prompt": "制作一段关于森林探险的短视频", "language": "auto"}


def run(store: TaskStore, clients: int, tasks: int) -> tuple[float, float, float]:
    """creates/s, p50 and p99 latency (ms) of `tasks` creates from `clients` threads."""
    latencies: list[float] = []
    per_client = max(1, tasks // clients)
    start = threading.Barrier(clients + 1)

    def client() -> None:
        mine = []
        start.wait()
        for _ in range(per_client):
            began = time.perf_counter()
            store.create_running(uuid.uuid4().hex, REQUEST, "bench", 60.0)
            mine.append(time.perf_counter() - began)
        latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    cuts = statistics.quantiles(latencies, n=100)
    return len(latencies) / elapsed, cuts[49] * 1e3, cuts[98] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000, help="creates per measurement")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--dir", type=Path, default=None, help="where the databases go")
    parser.add_argument("--postgres-url", default=None)
    options = parser.parse_args()
    server = None
    with tempfile.TemporaryDirectory(dir=options.dir) as folder:
        url, password = options.postgres_url, os.environ.get("VSS_TASK_STORE_PASSWORD")
        if url is None:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from postgres_server import PostgresServer

            server = PostgresServer().init()
            server.start(fsync=True)
            url, password = server.url(server.create_database()), server.password
        try:
            print("| backend | clients | creates/s | p50 ms | p99 ms |")
            print("| --- | --- | --- | --- | --- |")
            for clients in options.clients:
                for backend in ("sqlite", "postgresql"):
                    if backend == "sqlite":
                        store = TaskStore(Path(folder) / f"tasks-{clients}.db")
                    else:
                        store = TaskStore(url, password=password, pool_size=clients)
                    run(store, min(clients, 4), 50)  # warm: connections, statement cache
                    rate, p50, p99 = run(store, clients, options.tasks)
                    store.close()
                    print(f"| {backend} | {clients} | {rate:,.0f} | {p50:.2f} | {p99:.2f} |")
        finally:
            if server is not None:
                server.destroy()


if __name__ == "__main__":
    main()
