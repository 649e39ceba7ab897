"""What recording the model-side metrics costs per request, inside a Ray actor (real
instruments, Ray's metrics agent running): ModelMetrics.record_request + record_engine, as the
ChatGLM deployment calls them after each chat request.

    .venv/bin/python scripts/bench_metrics.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import time

import ray

from deployments.engine.base import GenerationResult


@ray.remote(num_cpus=0)
class Recorder:
    def run(self, calls: int) -> dict[str, float]:
        from deployments.metrics import ModelMetrics

        metrics = ModelMetrics()
        result = GenerationResult("x", 650, 300, "stop", first_token_at=time.perf_counter())
        batch_sizes: dict[int, int] = {}
        metrics.record_request(result, time.perf_counter())  # instruments made here
        started = time.perf_counter()
        for i in range(calls):
            batch_sizes[8] = batch_sizes.get(8, 0) + (i % 8 == 0)  # one batch per 8 requests
            metrics.record_request(result, started)
            metrics.record_engine(batch_sizes, i)
        elapsed = time.perf_counter() - started
        return {"calls": calls, "us_per_request": elapsed / calls * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    calls = parser.parse_args().calls
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        report = ray.get(Recorder.remote().run.remote(calls))
    finally:
        ray.shutdown()
    print("| calls | µs per request (record_request + record_engine) |")
    print("| --- | --- |")
    print(f"| {report['calls']} | {report['us_per_request']:.1f} |")


if __name__ == "__main__":
    main()
