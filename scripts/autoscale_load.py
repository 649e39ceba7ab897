"""Replicas over time under a step load: start the CPU profile with an autoscaling ChatGLM, run
phases of concurrent clients, sample the ChatGLM replica processes every 0.5 s, write a CSV and a
plot (docs/bench/autoscaling.{csv,png} by default), stop everything.

    python scripts/autoscale_load.py [--phases 0:10 2:30 8:60 0:60] [--model tiny]
        [--target 1] [--upscale-delay 2] [--downscale-delay 10] [--max-replicas 3]

A phase is CLIENTS:SECONDS; each client creates a task (async), polls it to the end, repeats.
The service is `serve run` of serve_config.cpu.yaml on a private cluster (loadtests/service.py),
with the ChatGLM autoscaling given here. A replica is counted from its process title
(`ray::ServeReplica:video-script:ChatGLM`) among `serve run`'s descendants, so a replica still
loading counts; the printed summary gives, per phase, the mean replicas, completed tasks/s and
p50/p95 task latency, and the time from each phase's start to the first replica change.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadtests.service import REPLICA_TITLE, ServeProcess, model_args  # noqa: E402

PROMPTS = ["制作一段关于森林探险的短视频", "A short film about a lost umbrella", "城市夜景延时摄影"]
CHATGLM_TITLE = f"{REPLICA_TITLE}video-script:ChatGLM"


def chatglm_replicas(service: ServeProcess) -> int:
    count = 0
    for child in psutil.Process(service.process.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if " ".join(child.cmdline()).startswith(CHATGLM_TITLE):
                count += 1
    return count


class Load:
    """Clients that each create a task, poll it until it finishes, and start over."""

    def __init__(self, url: str):
        self.url = url
        self.finished: list[tuple[float, float, str]] = []  # (end time, latency s, outcome)
        self.lock = threading.Lock()
        self.threads: list[tuple[threading.Thread, threading.Event]] = []

    def resize(self, clients: int) -> None:
        while len(self.threads) > clients:
            thread, stop = self.threads.pop()
            stop.set()
        while len(self.threads) < clients:
            stop = threading.Event()
            thread = threading.Thread(target=self._client, args=(len(self.threads), stop))
            thread.start()
            self.threads.append((thread, stop))

    def _client(self, number: int, stop: threading.Event) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            for round_ in range(100_000):
                if stop.is_set():
                    return
                started = time.monotonic()
                body = {"prompt": PROMPTS[(number + round_) % len(PROMPTS)], "num_scenes": 3}
                try:
                    created = http.post("/api/tasks/", json=body)
                    if created.status_code != 202:
                        outcome = f"http {created.status_code}"
                    else:
                        task_id = created.json()["task_id"]
                        for _ in range(1200):
                            task = http.get(f"/api/tasks/{task_id}").json()
                            if task["status"] in ("completed", "failed"):
                                break
                            time.sleep(0.1)
                        outcome = f"{task['status']}/{task.get('source')}"
                except httpx.HTTPError as error:
                    outcome = type(error).__name__
                    stop.wait(0.5)
                with self.lock:
                    self.finished.append((time.monotonic(), time.monotonic() - started, outcome))

    def stop(self) -> None:
        self.resize(0)


def parse_phase(text: str) -> tuple[int, float]:
    clients, _, seconds = text.partition(":")
    return int(clients), float(seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", nargs="+", default=["0:10", "2:30", "8:60", "0:60"])
    parser.add_argument("--model", default="tiny", help="tiny, bench, none or a path")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--target", type=float, default=1, help="target_ongoing_requests")
    parser.add_argument("--min-replicas", type=int, default=1)
    parser.add_argument("--max-replicas", type=int, default=3)
    parser.add_argument("--upscale-delay", type=float, default=2)
    parser.add_argument("--downscale-delay", type=float, default=10)
    parser.add_argument("--replica-cpus", type=float, default=0.25)
    parser.add_argument("--out", default=str(ROOT / "docs" / "bench" / "autoscaling"))
    args = parser.parse_args(argv)
    phases = [parse_phase(p) for p in args.phases]

    autoscaling = {
        "min_replicas": args.min_replicas,
        "max_replicas": args.max_replicas,
        "target_ongoing_requests": args.target,
        "upscale_delay_s": args.upscale_delay,
        "downscale_delay_s": args.downscale_delay,
        "metrics_interval_s": 0.5,
        "look_back_period_s": 2,
    }
    app_args = {**model_args(args.model), "max_new_tokens": args.max_new_tokens}
    # A quarter CPU each (logical; they share the cores): at the profile's 1 CPU a second
    # replica does not fit the 2-CPU local cluster beside the other deployments.
    deployments = {
        "ChatGLM": {
            "autoscaling_config": autoscaling,
            "ray_actor_options": {"num_cpus": args.replica_cpus, "num_gpus": 0},
        }
    }
    samples: list[tuple[float, int, int, int]] = []  # (t, clients, replicas, finished so far)
    bounds: list[tuple[float, float, int]] = []
    with ServeProcess(app_args, deployments) as service:
        load = Load(service.url)
        t0 = time.monotonic()
        try:
            for clients, seconds in phases:
                load.resize(clients)
                start = time.monotonic() - t0
                while time.monotonic() - t0 < start + seconds:
                    with load.lock:
                        done = len(load.finished)
                    samples.append(
                        (time.monotonic() - t0, clients, chatglm_replicas(service), done)
                    )
                    time.sleep(0.5)
                bounds.append((start, time.monotonic() - t0, clients))
        finally:
            load.stop()
        finished = [(end - t0, latency, outcome) for end, latency, outcome in load.finished]

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["t_s", "clients", "chatglm_replicas", "tasks_finished"])
        writer.writerows((f"{t:.1f}", c, r, d) for t, c, r, d in samples)

    print(f"autoscaling: {autoscaling}")
    print("| phase | clients | mean replicas | max | tasks/s | p50 s | p95 s | first change |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for number, (start, end, clients) in enumerate(bounds, start=1):
        inside = [s for s in samples if start <= s[0] < end]
        latencies = sorted(lat for t, lat, _ in finished if start <= t < end)
        replicas = [s[2] for s in inside]
        change = next((s[0] - start for s in inside if s[2] != inside[0][2]), None)
        p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
        print(
            f"| {number} | {clients} | {statistics.mean(replicas):.2f} | {max(replicas)} | "
            f"{len(latencies) / (end - start):.2f} | "
            f"{statistics.median(latencies) if latencies else float('nan'):.2f} | {p95:.2f} | "
            f"{'-' if change is None else f'{change:.1f} s'} |"
        )
    outcomes: dict[str, int] = {}
    for _, _, outcome in finished:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    print(f"task outcomes: {outcomes}")
    plot(samples, finished, autoscaling, out.with_suffix(".png"))
    print(f">> {out.with_suffix('.csv')}, {out.with_suffix('.png')}")
    return 0


def plot(samples, finished, autoscaling, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [s[0] for s in samples]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 5.5))
    top.step(times, [s[2] for s in samples], where="post", label="ChatGLM replicas")
    top.step(times, [s[1] for s in samples], where="post", linestyle="--", label="clients")
    top.set_ylabel("count")
    top.legend(loc="upper left")
    top.set_title(
        f"target_ongoing_requests={autoscaling['target_ongoing_requests']:g}, "
        f"upscale_delay_s={autoscaling['upscale_delay_s']:g}, "
        f"downscale_delay_s={autoscaling['downscale_delay_s']:g}"
    )
    window = 5.0
    centres = [t for t in times if t >= window]
    rate = [sum(1 for end, _, _ in finished if c - window <= end < c) / window for c in centres]
    bottom.plot(centres, rate, label=f"tasks finished/s ({window:g} s window)")
    bottom.set_xlabel("seconds")
    bottom.set_ylabel("tasks/s")
    bottom.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
