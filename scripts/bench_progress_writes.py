"""What one progress write (TaskStore.set_progress, with a 3-scene draft) costs on SQLite: at the
store's synchronous=FULL and on the relaxed path (that write at NORMAL on the one connection,
serve_app/store/tasks.py `_advisory_write`), rounds alternating, in one run.

    python scripts/bench_progress_writes.py --writes 300 --rounds 5 [--db /path/on/the/disk.db]

Prints p50 / mean milliseconds per write for each, and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from deployments.storyboard.fallback import fallback_script_json
from deployments.storyboard.models import ScriptRequest
from serve_app.store import TaskStore

REQUEST = ScriptRequest(prompt="制作一段关于森林探险的短视频", num_scenes=3)


def timed_writes(store: TaskStore, task_id: str, writes: int, start: int) -> list[float]:
    draft = {"draft": 1, "scenes": fallback_script_json(REQUEST)["scenes"]}
    seconds = []
    for n in range(writes):
        began = time.perf_counter()
        assert store.set_progress(task_id, "w", 10, "generating", start + n, draft)
        seconds.append(time.perf_counter() - began)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--db", type=Path, help="default: a file in a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        store = TaskStore(args.db or Path(scratch) / "tasks.db")
        store.create_running("bench", REQUEST.model_dump(mode="json"), "w", 3600)
        timings: dict[bool, list[float]] = {False: [], True: []}
        for round_index in range(args.rounds):
            for relaxed in (False, True) if round_index % 2 == 0 else (True, False):
                store.relaxed_progress_writes = relaxed
                timings[relaxed] += timed_writes(store, "bench", args.writes, round_index)
        store.close()
    print("| progress write | p50 ms | mean ms | p99 ms |")
    print("| --- | --- | --- | --- |")
    for relaxed, name in ((False, "synchronous=FULL"), (True, "relaxed (NORMAL for that write)")):
        ms = sorted(s * 1000 for s in timings[relaxed])
        p99 = ms[int(len(ms) * 0.99) - 1]
        print(f"| {name} | {statistics.median(ms):.3f} | {statistics.mean(ms):.3f} | {p99:.3f} |")
    full, relaxed = (statistics.median(timings[r]) for r in (False, True))
    print(f"relaxed / FULL (p50): {relaxed / full:.2f}")


if __name__ == "__main__":
    main()
