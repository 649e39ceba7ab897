"""Run the Locust mix headless against a URL with CSV and HTML reports (loadtest and soak)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from loadtests.service import ROOT

LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
RESULTS_DIR = ROOT / "loadtests" / "results"
LOCUST_BIN = Path(sys.executable).with_name("locust")


def start_locust(
    url: str, users: int, spawn_rate: float, duration_s: int, report_name: str, p95_ms: float
) -> subprocess.Popen:
    """Start Locust for `duration_s`; reports go to loadtests/results/<report_name>*."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    prefix = RESULTS_DIR / report_name
    command = [
        str(LOCUST_BIN),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        url,
        "--users",
        str(users),
        "--spawn-rate",
        str(spawn_rate),
        "--run-time",
        f"{duration_s}s",
        "--stop-timeout",
        "30",
        "--p95-ms",
        str(p95_ms),
        "--csv",
        str(prefix),
        "--csv-full-history",
        "--html",
        f"{prefix}.html",
        "--only-summary",
    ]
    print(">> " + " ".join(command), flush=True)
    return subprocess.Popen(command, cwd=ROOT)
