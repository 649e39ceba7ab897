"""CPU time per request of each Ray process, under a closed-loop load on a running service.

Answers "where does the time go" for the full stack: which replica (or the proxy) spends how
many milliseconds of CPU per `?wait=true` task. Loopback only; bounded by --requests.

    make serve            # or any `serve run` of this app, with or without a model
    python scripts/profile_cpu.py --url http://127.0.0.1:8000 --requests 800 --clients 32
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import time

import httpx
import psutil

RAY_PROCESS_NAMES = ("raylet", "gcs_server", "serve")


def process_label(process: psutil.Process) -> str | None:
    """`ray::ServeReplica:<app>:<deployment>` and friends; None for unrelated processes. Ray
    appends the running method to the title while a replica is busy
    (`...:Ingress.handle_request_with_rejection`); that suffix is cut off."""
    command = " ".join(process.cmdline())
    if command.startswith("ray::"):
        return command.split()[0].split(".")[0]
    return process.name() if process.name() in RAY_PROCESS_NAMES else None


def cpu_seconds_by_pid() -> dict[int, tuple[str, float]]:
    """Per process id (titles change while a replica works): its label and CPU seconds."""
    seconds: dict[int, tuple[str, float]] = {}
    for process in psutil.process_iter():
        try:
            label = process_label(process)
            if label:
                times = process.cpu_times()
                seconds[process.pid] = (label, times.user + times.system)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return seconds


def cpu_spent(before: dict, after: dict) -> collections.Counter:
    """CPU seconds between two samples, summed by label (a process born meanwhile from 0)."""
    spent: collections.Counter = collections.Counter()
    for pid, (label, seconds) in after.items():
        spent[label] += seconds - before.get(pid, (label, 0.0))[1]
    return spent


async def closed_loop(url: str, requests: int, clients: int) -> float:
    """Send `requests` sync tasks from `clients` workers; the wall time."""
    remaining = iter(range(requests))
    async with httpx.AsyncClient(base_url=url, timeout=120) as session:

        async def client() -> None:
            for number in remaining:
                response = await session.post(
                    "/api/tasks/", params={"wait": "true"}, json={"prompt": f"森林探险 {number}"}
                )
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args(argv)
    before = cpu_seconds_by_pid()
    wall_s = asyncio.run(closed_loop(args.url, args.requests, args.clients))
    spent = cpu_spent(before, cpu_seconds_by_pid())
    print(f"{args.requests / wall_s:.1f} req/s over {wall_s:.1f} s ({args.clients} clients)")
    print(f"{'process':<50} {'CPU s':>7} {'ms/request':>11}")
    for label, seconds in spent.most_common():
        print(f"{label:<50} {seconds:>7.1f} {seconds / args.requests * 1000:>11.1f}")
    print(
        f"{'total':<50} {sum(spent.values()):>7.1f} "
        f"{sum(spent.values()) / args.requests * 1000:>11.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
