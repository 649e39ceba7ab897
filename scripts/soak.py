"""`make soak DURATION=1200`: the Locust mix for DURATION seconds while sampling each replica's RSS.

    python scripts/soak.py [--duration 1200] [--users 8] [--model tiny] [--max-growth-mb 100]

Memory is compared between the window right after warm-up and the last window of the run; the
run fails when any replica grew by more than --max-growth-mb (a leak shows as steady growth,
not as the one-off jump of allocator arenas and caches filling during warm-up). Writes
loadtests/results/soak_rss.csv and soak_rss.png, plus Locust's soak_* reports.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

from loadtests.runner import RESULTS_DIR, start_locust
from loadtests.service import ServeProcess, model_args

MB = 1024 * 1024


def sample_rss(service: ServeProcess, started: float) -> list[tuple[float, str, float]]:
    samples = []
    for deployment, process in service.replica_processes().items():
        try:
            samples.append((time.monotonic() - started, deployment, process.memory_info().rss / MB))
        except psutil.Error:
            continue  # a replica restarting between listing and reading
    return samples


def window_median(samples, deployment: str, start_s: float, end_s: float) -> float | None:
    values = [rss for t, name, rss in samples if name == deployment and start_s <= t < end_s]
    return statistics.median(values) if values else None


def growth_report(samples, duration_s: float, warmup_s: float, window_s: float) -> dict:
    """RSS growth per deployment: last window's median minus the post-warm-up window's."""
    report = {}
    for deployment in sorted({name for _, name, _ in samples}):
        after_warmup = window_median(samples, deployment, warmup_s, warmup_s + window_s)
        at_end = window_median(samples, deployment, duration_s - window_s, duration_s + 60)
        if after_warmup is not None and at_end is not None:
            report[deployment] = (after_warmup, at_end, at_end - after_warmup)
    return report


def write_samples(samples, path: Path) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["elapsed_s", "deployment", "rss_mb"])
        writer.writerows((round(t, 1), name, round(rss, 1)) for t, name, rss in samples)


def plot_samples(samples, warmup_s: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5))
    for deployment in sorted({name for _, name, _ in samples}):
        points = [(t / 60, rss) for t, name, rss in samples if name == deployment]
        axes.plot(*zip(*points, strict=True), label=deployment)
    axes.axvline(warmup_s / 60, color="grey", linestyle="--", label="end of warm-up")
    axes.set(xlabel="minutes", ylabel="RSS (MB)", title="Replica RSS under the Locust mix")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=1200, help="Seconds of load.")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--model", default="tiny", help="tiny, bench, none (fallback) or a path.")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--sample-every", type=float, default=10.0, help="Seconds.")
    parser.add_argument("--warmup", type=float, default=None, help="Seconds; default 20 %%.")
    parser.add_argument("--max-growth-mb", type=float, default=100.0)
    parser.add_argument("--p95-ms", type=float, default=30_000.0)
    args = parser.parse_args(argv)
    warmup_s = args.warmup if args.warmup is not None else args.duration * 0.2
    window_s = max(60.0, args.duration * 0.1)

    app_args = {**model_args(args.model), "max_new_tokens": args.max_new_tokens}
    samples: list[tuple[float, str, float]] = []
    with ServeProcess(app_args, log_path=RESULTS_DIR / "soak-serve.log") as service:
        locust = start_locust(service.url, args.users, 2, args.duration, "soak", args.p95_ms)
        started = time.monotonic()
        try:
            while locust.poll() is None and time.monotonic() - started < args.duration + 120:
                samples.extend(sample_rss(service, started))
                time.sleep(args.sample_every)
        finally:
            if locust.poll() is None:
                locust.terminate()
        try:
            locust_exit = locust.wait(60)
        except subprocess.TimeoutExpired:
            locust.kill()
            locust_exit = 1

    write_samples(samples, RESULTS_DIR / "soak_rss.csv")
    plot_samples(samples, warmup_s, RESULTS_DIR / "soak_rss.png")
    leaked = False
    print(f"{'deployment':<16} {'after warm-up':>14} {'at end':>10} {'growth':>9}  (RSS, MB)")
    for deployment, (before, after, growth) in growth_report(
        samples, args.duration, warmup_s, window_s
    ).items():
        verdict = "LEAK?" if growth > args.max_growth_mb else "ok"
        leaked |= growth > args.max_growth_mb
        print(f"{deployment:<16} {before:>14.1f} {after:>10.1f} {growth:>+9.1f}  {verdict}")
    print(f">> RSS samples: {RESULTS_DIR / 'soak_rss.csv'}, plot: {RESULTS_DIR / 'soak_rss.png'}")
    return 1 if leaked or locust_exit else 0


if __name__ == "__main__":
    sys.exit(main())
