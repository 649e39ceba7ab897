"""Score storyboards for the evaluation prompts with the same metrics the tests assert.

    python scripts/eval_scripts.py --url http://127.0.0.1:8000   # a live service
    python scripts/eval_scripts.py --local                       # the fallback, in-process

Each prompt of tests/data/eval_prompts.json goes to POST /api/tasks/?wait=true; the finished
task's `result` is scored by deployments.storyboard.quality and its `source` (llm, llm_repaired,
fallback) shown. Prints a Markdown table and a summary; exits 1 when any task did not complete.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from deployments.storyboard.language import resolve_language
from deployments.storyboard.models import ScriptRequest, VideoScript
from deployments.storyboard.quality import ScriptMetrics, score_script

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_PROMPTS = ROOT / "tests" / "data" / "eval_prompts.json"
POLL_INTERVAL_S = 1.0


@dataclass
class Outcome:
    request: ScriptRequest
    source: str
    metrics: ScriptMetrics | None
    error: str | None = None


def load_requests(path: Path) -> list[ScriptRequest]:
    cases = json.loads(path.read_text(encoding="utf-8"))
    return [ScriptRequest(**{k: v for k, v in case.items() if k != "genre"}) for case in cases]


def evaluate_live(base_url: str, request: ScriptRequest, timeout_s: float) -> Outcome:
    """One task through the real API: submit, wait, poll if the wait ran out, then score."""
    import httpx

    body = request.model_dump(exclude_none=True, exclude_defaults=True)
    deadline = time.monotonic() + timeout_s
    try:
        with httpx.Client(base_url=base_url, timeout=timeout_s) as client:
            response = client.post("/api/tasks/", params={"wait": "true"}, json=body)
            task = response.json()
            while response.status_code in (200, 202) and task.get("status") in (
                "pending",
                "running",
            ):
                if time.monotonic() > deadline:
                    return Outcome(request, "-", None, f"not finished after {timeout_s:.0f} s")
                time.sleep(POLL_INTERVAL_S)
                response = client.get(f"/api/tasks/{task['task_id']}")
                task = response.json()
    except httpx.HTTPError as error:
        return Outcome(request, "-", None, f"{type(error).__name__}: {error}")
    if response.status_code != 200 or task.get("status") != "completed":
        problem = task.get("error") or task.get("status") or response.text[:200]
        return Outcome(request, "-", None, f"HTTP {response.status_code}: {problem}")
    script = VideoScript.model_validate(task["result"])
    return Outcome(request, task.get("source") or "?", score_script(request, script))


def evaluate_local(request: ScriptRequest) -> Outcome:
    from deployments.storyboard.fallback import build_fallback_script

    return Outcome(request, "fallback", score_script(request, build_fallback_script(request)))


def print_report(outcomes: list[Outcome]) -> None:
    print("| # | lang | source | scenes | distinct | dur err s | count ok | lang ok "
          "| en visuals | keywords | cameras | prompt |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for number, outcome in enumerate(outcomes, start=1):
        prompt = outcome.request.prompt.replace("|", "/")[:36]
        m = outcome.metrics
        if m is None:
            print(f"| {number} | | {outcome.source} | ERROR: {outcome.error} |||||||| {prompt} |")
            continue
        print(
            f"| {number} | {resolve_language(outcome.request)} | {outcome.source} | {m.scenes} "
            f"| {m.distinct_scene_ratio:.2f} | {m.duration_error_s:g} | {_yes(m.scene_count_ok)} "
            f"| {_yes(m.language_ok)} | {_yes(m.visual_prompts_english)} "
            f"| {m.keyword_coverage:.2f} | {m.distinct_cameras} | {prompt} |"
        )
    scored = [o.metrics for o in outcomes if o.metrics is not None]
    print()
    print(f"completed {len(scored)}/{len(outcomes)}; sources "
          f"{dict(Counter(o.source for o in outcomes if o.metrics))}")  # fmt: skip
    if scored:

        def share(flags) -> str:
            return f"{sum(flags)}/{len(scored)}"

        print(
            f"all scenes distinct {share(m.distinct_scene_ratio == 1 for m in scored)}, "
            f"duration within 0.5 s {share(m.duration_error_s <= 0.5 for m in scored)}, "
            f"scene count ok {share(m.scene_count_ok for m in scored)}, "
            f"language ok {share(m.language_ok for m in scored)}, "
            f"English visuals {share(m.visual_prompts_english for m in scored)}, "
            f"mean keyword coverage {statistics.mean(m.keyword_coverage for m in scored):.2f}"
        )


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="base URL of the service, e.g. http://127.0.0.1:8000")
    target.add_argument("--local", action="store_true", help="score the in-process fallback")
    parser.add_argument("--prompts", type=Path, default=DEFAULT_PROMPTS)
    parser.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per task")
    args = parser.parse_args()

    requests = load_requests(args.prompts)[: args.limit]
    if args.local:
        outcomes = [evaluate_local(request) for request in requests]
    else:
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            outcomes = list(
                pool.map(lambda r: evaluate_live(args.url.rstrip("/"), r, args.timeout), requests)
            )
    print_report(outcomes)
    return 0 if all(o.metrics is not None for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
