"""`make loadtest`: start the CPU profile with the tiny model, run the Locust mix, stop everything.

    python scripts/loadtest.py [--duration 60] [--users 16] [--model tiny|bench|none|DIR]

Reports: loadtests/results/loadtest_{stats,failures,...}.csv and loadtest.html. The exit code is
Locust's: non-zero when the failure ratio exceeds 0.5 % or a p95 exceeds --p95-ms.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from loadtests.runner import RESULTS_DIR, start_locust
from loadtests.service import ServeProcess, model_args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=60, help="Seconds of load.")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--spawn-rate", type=float, default=4.0)
    parser.add_argument("--model", default="tiny", help="tiny, bench, none (fallback) or a path.")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--p95-ms", type=float, default=10_000.0)
    parser.add_argument("--report-name", default="loadtest")
    args = parser.parse_args(argv)

    app_args = {**model_args(args.model), "max_new_tokens": args.max_new_tokens}
    with ServeProcess(app_args, log_path=RESULTS_DIR / f"{args.report_name}-serve.log") as service:
        locust = start_locust(
            service.url,
            args.users,
            args.spawn_rate,
            args.duration,
            args.report_name,
            args.p95_ms,
        )
        try:
            exit_code = locust.wait(args.duration + 120)
        except subprocess.TimeoutExpired:
            locust.kill()
            exit_code = 1
        finally:
            if locust.poll() is None:
                locust.terminate()
    print(f">> reports: {RESULTS_DIR / args.report_name}.html and *_stats.csv; exit {exit_code}")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
