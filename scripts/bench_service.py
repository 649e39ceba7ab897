"""`make bench`: the service against one-FastAPI-process-per-generate(), side by side, in one run.

    python scripts/bench_service.py [--models tiny bench] [--concurrency 1 4 16 32]

For each model: (a) baseline (loadtests/baseline_server.py), (b) this service with
max_batch_size 1, (c) this service with dynamic batching; a direct engine call (Serve overhead =
(c) p50 at concurrency 1 minus it) and the engine's own static batch (the ceiling (c) chases),
and (e) this service with the continuous-batching engine (`engine: continuous`). Then (d) the
fallback path with no model at concurrency 32; with --vllm, (f) this service with the vLLM engine
(`engine: vllm`). vLLM lives in .venv-vllm (`make setup-vllm`): this script runs from .venv and
starts (f) with .venv-vllm's `serve` (`make bench-vllm`), so the baseline and the static engine
run on .venv's transformers (under vLLM's pin, 5.19, the static engine's batches are ~3x slower).
Time to first token at 1 client: the direct engine from the result's first_token_at; each
service as the latency of a one-token /v1 completion (a random model's streamed text can be held
back to the end, as bytes that make no whole character). Every LLM
request is one of five Chinese storyboard requests, in turn (same shape, different subjects: the
shared instructions can be prefix-cached, the requests cannot), greedy, EOS ignored,
--new-tokens long. Closed-loop
clients: each of `concurrency` workers sends its next request as soon as the last one answers.
Writes bench_results/service.json and throughput / p95 plots per model.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import httpx

# As in the model replica (deployments/replica_options.py), for the direct engine call here and the
# baseline server (it inherits this environment): set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from deployments.engine import GenerationRequest, StaticBatchingEngine, results_or_raise
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.prompts import build_messages
from loadtests.prompts import BENCH_BODIES
from loadtests.service import ROOT, SERVE_BIN, ServeProcess, free_port, model_args
from loadtests.stats import percentile

RESULTS_DIR = ROOT / "bench_results"
VLLM_SERVE = ROOT / ".venv-vllm" / "bin" / "serve"


@dataclass
class Level:
    system: str
    model: str
    concurrency: int
    requests: int
    errors: int
    wall_s: float
    req_per_s: float
    tokens_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    generation_p50_ms: float | None = None
    replica_engine_ms_per_batch: float | None = None  # engine time inside the ChatGLM replica
    mean_batch_size: float | None = None  # requests per engine batch during the level
    # vLLM schedules requests, not batches: mean time a request spends in the engine (its queue
    # in vLLM's scheduler included), from the engine's busy_s over its requests.
    replica_engine_ms_per_request: float | None = None
    timings_p50_ms: dict | None = None  # the tasks' own queued/generation/total, p50


async def closed_loop(url: str, concurrency: int, total: int, time_limit_s: float) -> dict:
    """POST BENCH_BODIES in turn, `total` times from `concurrency` workers; latencies and
    replies."""
    latencies: list[float] = []
    replies: list[dict] = []
    errors = 0
    issued = 0
    deadline = time.monotonic() + time_limit_s
    bodies = itertools.cycle(BENCH_BODIES)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal issued, errors
        while issued < total and time.monotonic() < deadline:
            issued += 1
            started = time.perf_counter()
            try:
                async with session.post(url, json=next(bodies)) as response:
                    reply = await response.json()
                    ok = response.status == 200 and reply.get("status", "completed") == "completed"
            except (TimeoutError, aiohttp.ClientError, ValueError):
                ok, reply = False, {}
            latencies.append((time.perf_counter() - started) * 1000)
            if ok:
                replies.append(reply)
            else:
                errors += 1

    timeout = aiohttp.ClientTimeout(total=600)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        wall_s = time.perf_counter() - started
    return {"latencies": latencies, "replies": replies, "errors": errors, "wall_s": wall_s}


def measure_level(
    system: str,
    model: str,
    url: str,
    concurrency: int,
    total: int,
    time_limit_s: float,
    counters,
) -> Level:
    """Warm up with one round, then run the level; tokens (and the replica's engine time, where
    there is one) come from `counters()`."""
    asyncio.run(closed_loop(url, concurrency, concurrency, time_limit_s))
    before = counters([])
    run = asyncio.run(closed_loop(url, concurrency, total, time_limit_s))
    after = counters(run["replies"])
    tokens = after["generated_tokens"] - before["generated_tokens"]
    batches = (after.get("batches") or 0) - (before.get("batches") or 0)
    engine_ms = (after["busy_s"] - before["busy_s"]) * 1000 / batches if batches else None
    batched_requests = (after.get("requests") or 0) - (before.get("requests") or 0)
    per_request_ms = (
        (after["busy_s"] - before["busy_s"]) * 1000 / batched_requests
        if not batches and batched_requests and "busy_s" in after
        else None
    )
    timings = {
        key: percentile(
            [r["timings"][key] for r in run["replies"] if r.get("timings", {}).get(key)],
            0.50,
            ndigits=1,
        )
        for key in ("queued_ms", "generation_ms", "total_ms")
    }
    generation = [
        r["timings"]["generation_ms"]
        for r in run["replies"]
        if r.get("timings", {}).get("total_ms")
    ]
    level = Level(
        system=system,
        model=model,
        concurrency=concurrency,
        requests=len(run["latencies"]),
        errors=run["errors"],
        wall_s=round(run["wall_s"], 2),
        req_per_s=round(len(run["replies"]) / run["wall_s"], 2),
        tokens_per_s=round(tokens / run["wall_s"], 1),
        p50_ms=percentile(run["latencies"], 0.50, ndigits=1),
        p95_ms=percentile(run["latencies"], 0.95, ndigits=1),
        p99_ms=percentile(run["latencies"], 0.99, ndigits=1),
        generation_p50_ms=percentile(generation, 0.50, ndigits=1),
        replica_engine_ms_per_batch=round(engine_ms, 1) if engine_ms else None,
        mean_batch_size=round(batched_requests / batches, 2) if batches else None,
        replica_engine_ms_per_request=round(per_request_ms, 1) if per_request_ms else None,
        timings_p50_ms=timings if any(timings.values()) else None,
    )
    print(
        f"  {system:<22} c={concurrency:<3} {level.req_per_s:>8.2f} req/s "
        f"{level.tokens_per_s:>9.1f} tok/s  p50 {level.p50_ms:>8.1f}  p95 {level.p95_ms:>8.1f} "
        f"ms  errors {level.errors}"
        + (f"  mean batch {level.mean_batch_size}" if level.mean_batch_size else ""),
        flush=True,
    )
    return level


def service_counters(url: str):
    """The model replica's counters so far: generated tokens, batches, engine busy seconds."""

    def read(_replies: list[dict]) -> dict:
        return httpx.get(f"{url}/api/model/status", timeout=30).json()["counters"]

    return read


def baseline_counters(replies: list[dict]) -> dict:
    return {"generated_tokens": sum(reply["completion_tokens"] for reply in replies)}


def bench_args(model: str, args) -> dict:
    return {
        **model_args(model),
        "max_new_tokens": args.new_tokens,
        "temperature": 0.0,
        "bench_ignore_eos": True,
        "self_repair": False,
        # Same work as the baseline: no grammar masks, and no cache answering repeats for free.
        "constrained_decoding": False,
        "cache_enabled": False,
        "torch_threads": args.torch_threads,
    }


@contextlib.contextmanager
def baseline_server(app_args: dict, log_path: Path):
    """loadtests/baseline_server.py under uvicorn, configured through the same VSS_* settings."""
    port = free_port()
    env = {**os.environ, **{f"VSS_{k.upper()}": str(v) for k, v in app_args.items()}}
    command = [sys.executable, "-m", "uvicorn", "loadtests.baseline_server:app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=5).json().get("loaded"):
                    break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"baseline server did not start; see {log_path}")
        yield url
    finally:
        server.terminate()
        server.wait(30)


def bench_requests(args) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            messages=build_messages(ScriptRequest(**body)),
            max_new_tokens=args.new_tokens,
            temperature=0.0,
            ignore_eos=True,
        )
        for body in BENCH_BODIES
    ]


def direct_engine(model: str, args) -> tuple[dict, StaticBatchingEngine]:
    """p50 of one generate() call in this process, and the engine's static-batch throughput;
    the engine stays loaded for the paired overhead measurement."""
    engine = StaticBatchingEngine(
        model_args(model)["model_path"], "fp32", "cpu", torch_threads=args.torch_threads
    )
    engine.start()
    requests = bench_requests(args)
    results_or_raise(
        engine.generate(requests[:2])
    )  # warm-up; the shared instructions get cached, as in (c)
    single, first_token = [], []
    for request in itertools.islice(itertools.cycle(requests), args.min_requests):
        started = time.perf_counter()
        [result] = results_or_raise(engine.generate([request]))
        single.append((time.perf_counter() - started) * 1000)
        if result.first_token_at is not None:
            first_token.append((result.first_token_at - started) * 1000)
    threads = engine.status()["torch_threads"]
    batched = {}
    for batch in sorted({16, args.max_batch_size}):
        started = time.perf_counter()
        results = results_or_raise(
            engine.generate(list(itertools.islice(itertools.cycle(requests), batch)))
        )
        batched[batch] = sum(r.completion_tokens for r in results) / (time.perf_counter() - started)
    return {
        "p50_ms": percentile(single, 0.50),
        "ttft_p50_ms": percentile(first_token, 0.50, ndigits=1),
        "torch_threads": threads,
        "batch_tokens_per_s": batched,
    }, engine


def paired_overhead(engine: StaticBatchingEngine, url: str, args) -> dict:
    """Serve overhead at one client, side by side: each round the same request as a direct
    generate() in this process, then as a task through the service (nothing else running in
    between), so drift on a shared machine hits both alike. p50s, the p50 of the per-round
    differences, and the service's split (engine time in the replica, the task's own timings)."""
    requests = bench_requests(args)
    direct, served, differences, generation, total = [], [], [], [], []
    before = httpx.get(f"{url}/api/model/status", timeout=30).json()["counters"]
    with httpx.Client(timeout=120) as client:
        for index in range(args.overhead_rounds):
            request, body = requests[index % len(requests)], BENCH_BODIES[index % len(requests)]
            started = time.perf_counter()
            results_or_raise(engine.generate([request]))
            direct.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            reply = client.post(f"{url}/api/tasks/?wait=true", json=body).json()
            served.append((time.perf_counter() - started) * 1000)
            differences.append(served[-1] - direct[-1])
            generation.append(reply["timings"]["generation_ms"])
            total.append(reply["timings"]["total_ms"])
    after = httpx.get(f"{url}/api/model/status", timeout=30).json()["counters"]
    batches = after["batches"] - before["batches"]
    return {
        "rounds": args.overhead_rounds,
        "direct_p50_ms": percentile(direct, 0.50, ndigits=1),
        "service_p50_ms": percentile(served, 0.50, ndigits=1),
        "overhead_p50_ms": percentile(differences, 0.50, ndigits=1),
        "replica_engine_ms_per_batch": round(
            (after["busy_s"] - before["busy_s"]) * 1000 / batches, 1
        )
        if batches
        else None,
        "task_generation_p50_ms": percentile(generation, 0.50, ndigits=1),
        "task_total_p50_ms": percentile(total, 0.50, ndigits=1),
    }


def one_token_latency(url: str, args, requests: int = 10) -> float | None:
    """Time to first token as a client sees it: a /v1/chat/completions of the bench prompt with
    max_tokens 1, one client, p50 (the first request warms up)."""
    model = httpx.get(f"{url}/v1/models", timeout=30).json()["data"][0]["id"]
    bodies = itertools.cycle(BENCH_BODIES)
    samples = []
    with httpx.Client(timeout=120) as client:
        for _ in range(requests + 1):  # the first one warms up
            body = {
                "model": model,
                "messages": build_messages(ScriptRequest(**next(bodies))),
                "max_tokens": 1,
                "temperature": 0,
            }
            started = time.perf_counter()
            response = client.post(f"{url}/v1/chat/completions", json=body)
            response.raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
    return percentile(samples[1:], 0.50, ndigits=1)


def level_total(concurrency: int, args) -> int:
    return max(args.min_requests, args.rounds * concurrency)


def bench_model(model: str, args) -> tuple[list[Level], dict]:
    print(f">> model {model}: direct engine", flush=True)
    engine, direct = direct_engine(model, args)
    levels = []
    app_args = bench_args(model, args)
    with baseline_server(app_args, RESULTS_DIR / f"baseline-{model}.log") as url:
        for concurrency in args.concurrency:
            levels.append(
                measure_level(
                    "(a) baseline",
                    model,
                    f"{url}/generate",
                    concurrency,
                    level_total(concurrency, args),
                    args.level_time_limit,
                    baseline_counters,
                )
            )
    systems = [] if args.skip_batch1 else [("(b) serve batch=1", 1, "static")]
    systems.append(("(c) serve dynamic", args.max_batch_size, "static"))
    if not args.skip_continuous:
        systems.append(("(e) serve continuous", args.max_batch_size, "continuous"))
    if args.vllm:
        systems.append(("(f) serve vllm", args.max_batch_size, "vllm"))
    for system, batch_size, engine_mode in systems:
        service_args = {
            **app_args,
            "engine": engine_mode,
            "max_batch_size": batch_size,
            "batch_wait_timeout_s": args.batch_wait_s,
        }
        deployments = {"ChatGLM": {"max_ongoing_requests": max(batch_size, 32)}}
        if engine_mode == "vllm":
            service_args["vllm_max_num_seqs"] = max(args.concurrency)
            deployments = {}  # build_app sizes it: 2 x vllm_max_num_seqs
        log = RESULTS_DIR / f"serve-{model}-{engine_mode}.log"
        serve_bin = VLLM_SERVE if engine_mode == "vllm" else SERVE_BIN
        with ServeProcess(service_args, deployments, log, serve_bin) as service:
            url = f"{service.url}/api/tasks/?wait=true"
            status = httpx.get(f"{service.url}/api/model/status", timeout=30).json()
            engine[f"{system} torch_threads"] = status.get("torch_threads")
            for concurrency in args.concurrency:
                levels.append(
                    measure_level(
                        system,
                        model,
                        url,
                        concurrency,
                        level_total(concurrency, args),
                        args.level_time_limit,
                        service_counters(service.url),
                    )
                )
            if engine_mode != "static" or system.startswith("(c)"):
                engine[f"{system} ttft_p50_ms"] = one_token_latency(service.url, args)
            if system.startswith("(c)") and args.overhead_rounds:
                engine["serve_overhead_paired"] = paired_overhead(direct, service.url, args)
                print(f"  serve overhead, paired: {engine['serve_overhead_paired']}", flush=True)
    del direct
    gc.collect()
    return levels, engine


def bench_fallback(args) -> Level:
    print(">> fallback path (no model)", flush=True)
    with ServeProcess(bench_args("none", args), log_path=RESULTS_DIR / "serve-none.log") as service:
        return measure_level(
            "(d) fallback",
            "none",
            f"{service.url}/api/tasks/?wait=true",
            32,
            args.fallback_requests,
            args.level_time_limit,
            lambda _replies: {"generated_tokens": 0},
        )


def find(levels: list[Level], system: str, concurrency: int) -> Level | None:
    return next(
        (lv for lv in levels if lv.system.startswith(system) and lv.concurrency == concurrency),
        None,
    )


def summarize(model: str, levels: list[Level], engine: dict) -> dict:
    """The ratios the targets are stated in."""
    summary: dict = {"direct_engine_p50_ms": round(engine["p50_ms"], 1)}
    summary.update({k: v for k, v in engine.items() if k not in ("p50_ms", "batch_tokens_per_s")})
    base16, dyn16 = find(levels, "(a)", 16), find(levels, "(c)", 16)
    if base16 and dyn16:
        summary["c16_dynamic_over_baseline"] = round(dyn16.req_per_s / base16.req_per_s, 2)
    continuous16 = find(levels, "(e)", 16)
    if continuous16 and dyn16:
        summary["c16_static_over_continuous"] = round(dyn16.req_per_s / continuous16.req_per_s, 2)
    top = max(lv.concurrency for lv in levels)
    vllm_top, base_top, dyn_top = (find(levels, name, top) for name in ("(f)", "(a)", "(c)"))
    if vllm_top and base_top:
        summary[f"c{top}_vllm_over_baseline"] = round(vllm_top.req_per_s / base_top.req_per_s, 2)
    if vllm_top and dyn_top:
        summary[f"c{top}_vllm_over_static"] = round(vllm_top.req_per_s / dyn_top.req_per_s, 2)
    batch1_16 = find(levels, "(b)", 16)
    if batch1_16 and dyn16:
        summary["c16_dynamic_over_batch1"] = round(dyn16.req_per_s / batch1_16.req_per_s, 2)
    dyn1 = find(levels, "(c)", 1)
    if dyn1:
        summary["serve_overhead_p50_ms"] = round(dyn1.p50_ms - engine["p50_ms"], 1)
        if dyn1.generation_p50_ms is not None:
            summary["overhead_in_chat_handle_and_batch_wait_ms"] = round(
                dyn1.generation_p50_ms - engine["p50_ms"], 1
            )
            summary["overhead_outside_model_ms"] = round(dyn1.p50_ms - dyn1.generation_p50_ms, 1)
        if dyn1.replica_engine_ms_per_batch is not None:
            # The direct call and the replica run the same engine; on a shared 2-core VM their
            # speeds differ run to run, so this split is the one to read the Serve hops from.
            summary["replica_engine_ms_per_batch_c1"] = dyn1.replica_engine_ms_per_batch
            summary["chat_call_minus_replica_engine_ms"] = round(
                dyn1.generation_p50_ms - dyn1.replica_engine_ms_per_batch, 1
            )
    for batch, tokens_per_s in engine["batch_tokens_per_s"].items():
        level = find(levels, "(c)", batch)
        summary[f"engine_batch{batch}_tokens_per_s"] = round(tokens_per_s, 1)
        if level:
            summary[f"c{batch}_service_share_of_engine_batch{batch}"] = round(
                level.tokens_per_s / tokens_per_s, 2
            )
    print(f">> {model}: " + ", ".join(f"{k} = {v}" for k, v in summary.items()))
    return summary


def print_table(levels: list[Level]) -> None:
    print(
        f"{'model':<7}{'system':<22}{'c':>4}{'req/s':>9}{'tok/s':>10}{'p50 ms':>10}"
        f"{'p95 ms':>10}{'p99 ms':>10}{'errors':>8}"
    )
    for lv in levels:
        print(
            f"{lv.model:<7}{lv.system:<22}{lv.concurrency:>4}{lv.req_per_s:>9.2f}"
            f"{lv.tokens_per_s:>10.1f}{lv.p50_ms:>10.1f}{lv.p95_ms:>10.1f}{lv.p99_ms:>10.1f}"
            f"{lv.errors:>8}"
        )


def plot(model: str, levels: list[Level], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (throughput, p95) = plt.subplots(1, 2, figsize=(10, 4))
    for system in dict.fromkeys(lv.system for lv in levels if lv.model == model):
        points = [lv for lv in levels if lv.model == model and lv.system == system]
        concurrency = [lv.concurrency for lv in points]
        throughput.plot(concurrency, [lv.tokens_per_s for lv in points], marker="o", label=system)
        p95.plot(concurrency, [lv.p95_ms / 1000 for lv in points], marker="o", label=system)
    throughput.set(
        xscale="log",
        xlabel="concurrent clients",
        ylabel="generated tokens/s",
        title=f"Throughput ({model})",
    )
    p95.set(
        xscale="log",
        xlabel="concurrent clients",
        ylabel="p95 latency (s)",
        title=f"p95 latency ({model})",
    )
    for axes in (throughput, p95):
        axes.set_xticks(concurrency, [str(c) for c in concurrency])
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="*", default=["tiny", "bench"], help="None: fallback only."
    )
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 4, 16, 32])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-wait-s", type=float, default=0.01)
    parser.add_argument("--min-requests", type=int, default=12, help="Per level, at least.")
    parser.add_argument("--rounds", type=int, default=3, help="Requests per client per level.")
    parser.add_argument("--level-time-limit", type=float, default=240.0, help="Seconds.")
    parser.add_argument("--fallback-requests", type=int, default=1000)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="Everywhere; 0 = the service's default (on CPU every core the process may use).",
    )
    parser.add_argument("--skip-fallback", action="store_true")
    parser.add_argument(
        "--vllm",
        action="store_true",
        help="Also (f): the service with engine vllm, started from .venv-vllm.",
    )
    parser.add_argument(
        "--skip-continuous", action="store_true", help="No (e): the continuous engine's service."
    )
    parser.add_argument("--skip-batch1", action="store_true", help="No (b).")
    parser.add_argument(
        "--overhead-rounds",
        type=int,
        default=20,
        help="Serve overhead at 1 client: rounds of direct call + task, alternating (0: none).",
    )
    args = parser.parse_args(argv)
    if args.vllm and not VLLM_SERVE.exists():
        parser.error(f"--vllm: no {VLLM_SERVE}; `make setup-vllm` builds it")

    RESULTS_DIR.mkdir(exist_ok=True)
    levels: list[Level] = []
    summaries = {}
    for model in args.models:
        model_levels, engine = bench_model(model, args)
        levels += model_levels
        summaries[model] = summarize(model, model_levels, engine)
        plot(model, levels, RESULTS_DIR / f"service-{model}.png")
    if not args.skip_fallback:
        levels.append(bench_fallback(args))
    print_table(levels)
    for model, summary in summaries.items():
        print(f"{model}: " + json.dumps(summary))
    out = RESULTS_DIR / "service.json"
    out.write_text(
        json.dumps(
            {"args": vars(args), "levels": [asdict(lv) for lv in levels], "summary": summaries},
            indent=2,
        )
    )
    print(f">> {out} and bench_results/service-*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
