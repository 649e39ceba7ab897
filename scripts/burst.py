"""A bounded burst against a local service: N concurrent task requests, then every accepted
task followed to its end. Reports status-code counts, latency and whether anything was lost.

    python scripts/burst.py --requests 640 --url http://127.0.0.1:8000

Loopback only, bounded in request count (≤ 5000) and time (--timeout-s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from urllib.parse import urlparse

import aiohttp

from loadtests.stats import percentile

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_REQUESTS = 5000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--requests", type=int, default=640, help="concurrent POSTs")
    parser.add_argument("--api-key", default=None, help="sent as Authorization: Bearer")
    parser.add_argument("--wait", action="store_true", help="use ?wait=true (sync) requests")
    parser.add_argument("--timeout-s", type=float, default=300, help="bound on the whole run")
    args = parser.parse_args()
    if urlparse(args.url).hostname not in LOOPBACK:
        parser.error("the burst only targets a local service (127.0.0.1)")
    if not 1 <= args.requests <= MAX_REQUESTS:
        parser.error(f"--requests must be 1..{MAX_REQUESTS}")
    return args


async def timed_post(session: aiohttp.ClientSession, url: str, index: int, wait: bool):
    started = time.perf_counter()
    try:
        async with session.post(
            f"{url}/api/tasks/",
            json={"prompt": f"制作一段关于森林探险的短视频 #{index}"},
            params={"wait": "true"} if wait else None,
        ) as response:
            status: int | str = response.status
            task_id = (await response.json()).get("task_id") if status in (200, 202) else None
    except (aiohttp.ClientError, TimeoutError) as error:
        status, task_id = type(error).__name__, None
    return status, (time.perf_counter() - started) * 1000, task_id


async def follow(
    session: aiohttp.ClientSession, url: str, task_ids: list[str], deadline: float
) -> Counter:
    """Final states of the accepted tasks; `unfinished` for any still open at the deadline."""
    states: dict[str, str] = {}
    while time.monotonic() < deadline and len(states) < len(task_ids):
        for task_id in [t for t in task_ids if t not in states]:
            async with session.get(f"{url}/api/tasks/{task_id}") as response:
                task = await response.json() if response.status == 200 else {}
            if task.get("status") in ("completed", "failed"):
                states[task_id] = task["status"]
        await asyncio.sleep(0.5)
    return Counter(states.get(task_id, "unfinished") for task_id in task_ids)


async def burst(args: argparse.Namespace) -> dict:
    """aiohttp, not httpx: with hundreds of connections in one process httpx's own CPU time
    added ~10 s to every latency on two cores, hiding what the service did."""
    deadline = time.monotonic() + args.timeout_s
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    async with aiohttp.ClientSession(
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=args.timeout_s),
        connector=aiohttp.TCPConnector(limit=args.requests),
    ) as session:
        results = await asyncio.gather(
            *(timed_post(session, args.url, i, args.wait) for i in range(args.requests))
        )
        accepted = [task_id for _, _, task_id in results if task_id]
        final = await follow(session, args.url, accepted, deadline)
    by_status: dict[str, list[float]] = {}
    for status, latency_ms, _ in results:
        by_status.setdefault(str(status), []).append(latency_ms)
    return {
        "requests": args.requests,
        "status_counts": {status: len(values) for status, values in sorted(by_status.items())},
        "latency_ms": {
            status: {
                "p50": percentile(values, 0.5, ndigits=1),
                "p99": percentile(values, 0.99, ndigits=1),
                "max": round(max(values), 1),
                "mean": round(statistics.fmean(values), 1),
            }
            for status, values in sorted(by_status.items())
        },
        "accepted": len(accepted),
        "accepted_final_states": dict(final),
        "lost": final.get("unfinished", 0),
        "server_errors_other_than_503": sum(
            len(v) for s, v in by_status.items() if s.startswith("5") and s != "503"
        ),
    }


def main() -> int:
    report = asyncio.run(burst(parse_args()))
    print(json.dumps(report, indent=2))
    return 1 if report["lost"] or report["server_errors_other_than_503"] else 0


if __name__ == "__main__":
    sys.exit(main())
