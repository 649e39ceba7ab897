"""Task creations per second with the store's `PRAGMA synchronous` at FULL and at NORMAL.

    .venv/bin/python scripts/bench_task_store.py [--tasks 2000] [--dir /var/lib/...]

Each create is one committed transaction (as under Serve); run it on the disk that will hold
`task_db_path`, since fsync cost is the disk's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from serve_app.task_store import TaskStore

REQUEST = {"prompt": "制作一段关于森林探险的短视频", "language": "auto"}


def creates_per_second(path: Path, synchronous: str, tasks: int) -> float:
    store = TaskStore(path, synchronous=synchronous)
    started = time.perf_counter()
    for _ in range(tasks):
        store.create_running(uuid.uuid4().hex, REQUEST, "bench", 60.0)
    return tasks / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite files go")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=options.dir) as folder:
        for round_ in range(options.rounds):
            for synchronous in ("FULL", "NORMAL"):
                path = Path(folder) / f"{synchronous}-{round_}.db"
                rate = creates_per_second(path, synchronous, options.tasks)
                print(f"round {round_ + 1} synchronous={synchronous}: {rate:,.0f} creates/s")


if __name__ == "__main__":
    main()
