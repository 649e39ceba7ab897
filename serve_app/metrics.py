"""Prometheus metrics of the HTTP and task side (ingress replicas), through Ray Serve's metrics.

The model side's are in `deployments/metrics.py` (with `MetricSpec` and how Ray exports the
names: `ray_` before each). Every ingress replica records into its own instruments; Prometheus
sums them across replicas.

- `record_script(outcome)`: once per script the pipeline hands over (model, repaired, fallback).
- `record_quality(request, outcome)`: the script's quality checks (issue 13), pass or fail each.
- `record_webhook_delivery(outcome)`: once per webhook delivery attempt (serve_app/webhooks.py).
- `report_unfinished_tasks(count)`: a loop setting this replica's unfinished-task gauge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from deployments.metrics import Instruments, MetricSpec
from deployments.storyboard.constants import SCRIPT_SOURCES
from deployments.storyboard.models import ScriptRequest, VideoScript
from deployments.storyboard.quality import QualityReport, quality_report

logger = logging.getLogger("ray.serve")

# What a fallback's reason starts with (serve_app/pipeline.py writes "<kind>: <detail>"); the
# label is the kind, so a reason's free text never becomes a label value.
FALLBACK_REASONS = ("model_unavailable", "parse_failed", "generation_error", "timeout")
OTHER = "other"
# A webhook delivery attempt: answered 2xx; failed and will be tried again; failed for the
# last time (attempts or time used up, or a response that retrying cannot change).
WEBHOOK_OUTCOMES = ("delivered", "retrying", "failed")
UNFINISHED_TASKS_INTERVAL_S = 2.0

SCRIPTS = MetricSpec(
    "vss_scripts_total",
    "counter",
    "Scripts written, by the path that wrote them (llm, llm_repaired, fallback).",
    tag_keys=("source",),
)
FALLBACKS = MetricSpec(
    "vss_fallbacks_total",
    "counter",
    "Scripts the fallback wrote, by why the model's was not used.",
    tag_keys=("reason",),
)
PARSE_FAILURES = MetricSpec(
    "vss_parse_failures_total",
    "counter",
    "Model replies that did not parse into a valid script (each one, repaired or not).",
)
TASKS_UNFINISHED = MetricSpec(
    "vss_tasks_unfinished",
    "gauge",
    "Tasks an ingress replica has accepted and not finished (sum over replicas for the service).",
)
WEBHOOK_DELIVERIES = MetricSpec(
    "vss_webhook_deliveries_total",
    "counter",
    "Webhook delivery attempts, by outcome (delivered, retrying, failed).",
    tag_keys=("outcome",),
)

# The quality report's pass/fail checks, as metric labels (storyboard/quality.py computes them).
QUALITY_CHECKS: dict[str, Callable[[QualityReport], bool]] = {
    "duration": lambda report: report.duration_ok,
    "scene_count": lambda report: report.scene_count_ok,
    "narration": lambda report: report.narration_ok,
    "language": lambda report: report.language_ok,
    "visual_prompts_english": lambda report: report.visual_prompts_english,
    "distinct_scenes": lambda report: report.distinct_scene_ratio == 1.0,
    "characters": lambda report: report.character_coverage == 1.0,
}
QUALITY = MetricSpec(
    "vss_script_quality_checks_total",
    "counter",
    "Scripts handed over, by quality check (duration, scene_count, narration, language, "
    "visual_prompts_english, distinct_scenes, characters) and result (pass, fail).",
    tag_keys=("check", "result"),
)

SPECS = (SCRIPTS, FALLBACKS, PARSE_FAILURES, TASKS_UNFINISHED, WEBHOOK_DELIVERIES, QUALITY)

_instruments = Instruments(*SPECS)


def record_script(outcome: dict[str, Any]) -> None:
    """Count one script the pipeline produced: its source, the fallback's reason kind, and the
    replies that failed to parse on the way."""
    source = outcome["source"]
    _instruments[SCRIPTS.name].inc(
        1, tags={"source": source if source in SCRIPT_SOURCES else OTHER}
    )
    if source == "fallback":
        _instruments[FALLBACKS.name].inc(1, tags={"reason": fallback_reason_kind(outcome)})
    if outcome.get("parse_failures"):
        _instruments[PARSE_FAILURES.name].inc(outcome["parse_failures"])


def quality_checks(report: QualityReport) -> dict[str, bool]:
    return {check: passed(report) for check, passed in QUALITY_CHECKS.items()}


def record_quality(request: ScriptRequest, outcome: dict[str, Any]) -> None:
    """Count each quality check of the script the pipeline handed over as passed or failed.
    Metrics never fail a task: a script that does not validate here is logged and skipped."""
    try:
        report = quality_report(request, VideoScript.model_validate(outcome["script"]))
    except Exception:  # the task goes on; the log says what was not counted
        logger.warning("quality not counted for a %s script", outcome.get("source"), exc_info=True)
        return
    for check, ok in quality_checks(report).items():
        _instruments[QUALITY.name].inc(1, tags={"check": check, "result": "pass" if ok else "fail"})


def fallback_reason_kind(outcome: dict[str, Any]) -> str:
    kind = (outcome.get("fallback_reason") or "").split(":", 1)[0].strip()
    return kind if kind in FALLBACK_REASONS else OTHER


def record_webhook_delivery(outcome: str) -> None:
    """Count one webhook delivery attempt; `outcome` is one of WEBHOOK_OUTCOMES (ValueError
    otherwise: label values stay a fixed set)."""
    if outcome not in WEBHOOK_OUTCOMES:
        raise ValueError(f"webhook outcome {outcome!r} is not one of {WEBHOOK_OUTCOMES}")
    _instruments[WEBHOOK_DELIVERIES.name].inc(1, tags={"outcome": outcome})


def set_unfinished_tasks(count: int) -> None:
    _instruments[TASKS_UNFINISHED.name].set(count)


async def report_unfinished_tasks(
    count: Callable[[], int], interval_s: float = UNFINISHED_TASKS_INTERVAL_S
) -> None:
    """Set the gauge to `count()` every `interval_s` until cancelled (a replica's task runner
    has no hook for each change; a poll of one attribute costs nothing)."""
    while True:
        with contextlib.suppress(Exception):  # a metrics hiccup must not end the loop
            set_unfinished_tasks(count())
        await asyncio.sleep(interval_s)
