"""The model's status across all its replicas, for /api/model/status (and load/unload).

A Serve call goes to whichever replica the router picks, so each replica is asked on its own:
`DeploymentHandle.broadcast` (Ray Serve 2.60, public alpha API) sends one call to every running
replica of the deployment and collects each answer. Chosen over the alternatives because it
asks the replicas themselves, now: listing the replicas' actors (Ray's state API, which needs
the dashboard, then private replica methods) reaches past Serve; having each replica push its
status to a shared store would show it seconds late and add a component.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from ray.serve.handle import DeploymentHandle

# Deadline of a status broadcast (every replica's answer); past it the route is a 503.
STATUS_TIMEOUT_S = 30.0
# Replica calls that change the model (load, unload) may take a load's time.
LIFECYCLE_TIMEOUT_S = 600.0


async def every_replica(
    chat: DeploymentHandle, method: str, timeout_s: float = STATUS_TIMEOUT_S
) -> dict[str, Any]:
    """Call `method` (status, load or unload: each returns the replica's status) on every
    model replica; their statuses summed up, a replica whose call failed counted unreachable.
    503 when none answers, or past `timeout_s` (the broadcast's results share one deadline)."""
    try:
        answers = await chat.broadcast(method).results_async(
            timeout_s=timeout_s, return_exceptions=True
        )
    except Exception as error:  # no replica running (DeploymentUnavailableError), a timeout
        raise HTTPException(503, f"no model replica answered: {error!r}"[:500]) from None
    statuses = [answer for answer in answers if isinstance(answer, dict)]
    if not statuses:
        problem = next((repr(a) for a in answers), "no replica is running")
        raise HTTPException(503, f"no model replica answered: {problem}"[:500])
    return summarize(statuses, unreachable=len(answers) - len(statuses))


def summarize(statuses: list[dict[str, Any]], unreachable: int = 0) -> dict[str, Any]:
    """One status for the whole deployment: see ModelStatus (serve_app/protocol.py)."""
    replicas = sorted(statuses, key=lambda status: status.get("replica_id") or "")
    loaded = [status for status in replicas if status.get("loaded")]
    lead = loaded[0] if loaded else replicas[0]
    summary = {
        **lead,
        "replica_id": None,
        "loaded": bool(loaded),
        "reason": _reason(replicas, loaded),
        "counters": add_up([status.get("counters") or {} for status in replicas]),
        "host_rss_mb": _total([status.get("host_rss_mb") for status in replicas]),
        "replicas": replicas,
        "replicas_unreachable": unreachable,
    }
    caches = [status["prefix_cache"] for status in replicas if status.get("prefix_cache")]
    summary["prefix_cache"] = add_up(caches) if caches else None
    return summary


def add_up(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Counters of several replicas as one: numbers summed, `max_*` the largest, per-key maps
    (a histogram) summed per key; the mean batch size computed again from the sums."""
    total: dict[str, Any] = {}
    for report in reports:
        for key, value in report.items():
            if isinstance(value, dict):
                merged = total.setdefault(key, {})
                for bucket, count in value.items():
                    merged[bucket] = merged.get(bucket, 0) + count
            elif isinstance(value, bool) or not isinstance(value, int | float):
                total.setdefault(key, value)
            elif key.startswith("max_"):
                total[key] = max(total.get(key, value), value)
            else:
                total[key] = total.get(key, 0) + value
    if "mean_batch_size" in total:
        batches = total.get("batches", 0)
        total["mean_batch_size"] = round(total.get("requests", 0) / batches, 3) if batches else 0.0
    if "busy_s" in total:
        total["busy_s"] = round(total["busy_s"], 3)
    if "batch_size_histogram" in total:
        histogram = total["batch_size_histogram"]
        total["batch_size_histogram"] = {k: histogram[k] for k in sorted(histogram, key=int)}
    return total


def _reason(replicas: list[dict[str, Any]], loaded: list[dict[str, Any]]) -> str | None:
    down = [status for status in replicas if not status.get("loaded")]
    if not down:
        return None
    if not loaded:
        return down[0].get("reason")
    return f"{len(down)} of {len(replicas)} replicas not loaded: {down[0].get('reason')}"


def _total(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return round(sum(present), 1) if present else None
