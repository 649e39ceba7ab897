"""What streaming costs the engine: tokens/s of the same batches with every row streamed (a sink
per row, as /v1's `stream: true` gives it) and with none, in one run, rounds alternating.

    python scripts/bench_streaming.py --model models/bench --batch-sizes 1 8 --new-tokens 64
    python scripts/bench_streaming.py --model models/bench --continuous

Greedy, EOS ignored (every request generates exactly --new-tokens), the service's own storyboard
prompts (loadtests/prompts.py BENCH_BODIES). No Ray: the engine alone, so the number is the cost
of decoding each row's text token by token and calling its sink (engine/streaming.py), not of
SSE or Serve's streaming handles. Prints a table; JSON to bench_results/streaming-<engine>.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path

from deployments.engine import GenerationRequest, StaticBatchingEngine, results_or_raise
from deployments.engine.continuous_batching import ContinuousBatchingEngine
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.prompts import build_messages
from loadtests.prompts import BENCH_BODIES

ROOT = Path(__file__).resolve().parents[1]


def requests(batch: int, new_tokens: int) -> list[GenerationRequest]:
    bodies = itertools.islice(itertools.cycle(BENCH_BODIES), batch)
    return [
        GenerationRequest(
            messages=build_messages(ScriptRequest(**body)),
            max_new_tokens=new_tokens,
            temperature=0.0,
            ignore_eos=True,
        )
        for body in bodies
    ]


def run(engine, batch: int, new_tokens: int, streamed: bool) -> tuple[float, int]:
    """tokens/s of one batch, and how many deltas its sinks received."""
    received: list[int] = []
    sinks = [lambda d, r=received: r.append(len(d.text)) for _ in range(batch)]
    call = requests(batch, new_tokens)
    started = time.perf_counter()
    outcomes = engine.generate(call, sinks=sinks) if streamed else engine.generate(call)
    seconds = time.perf_counter() - started
    results = results_or_raise(outcomes)
    return sum(r.completion_tokens for r in results) / seconds, len(received)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/bench")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--continuous", action="store_true", help="the continuous engine")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    if args.continuous:
        engine = ContinuousBatchingEngine(
            args.model, device=args.device, max_batch_size=max(args.batch_sizes)
        )
    else:
        engine = StaticBatchingEngine(args.model, device=args.device)
    engine.start()
    run(engine, 1, 8, streamed=True)  # warm-up: allocations, prefix cache, tokenizer caches
    rows = []
    for batch in args.batch_sizes:
        rates: dict[bool, list[float]] = {False: [], True: []}
        deltas = 0
        for round_index in range(args.rounds):
            order = (False, True) if round_index % 2 == 0 else (True, False)
            for streamed in order:
                rate, received = run(engine, batch, args.new_tokens, streamed)
                rates[streamed].append(rate)
                deltas = max(deltas, received)
        plain, streamed = statistics.median(rates[False]), statistics.median(rates[True])
        rows.append(
            {
                "batch": batch,
                "plain_tokens_per_s": round(plain, 1),
                "streamed_tokens_per_s": round(streamed, 1),
                "streamed_over_plain": round(streamed / plain, 3),
                "deltas_per_batch": deltas,
            }
        )
    name = "continuous" if args.continuous else "static"
    print(
        f"engine {name}, model {args.model}, {args.new_tokens} new tokens, medians of "
        f"{args.rounds} rounds"
    )
    print("batch | plain tok/s | streamed tok/s | streamed/plain | deltas")
    for row in rows:
        print(
            f"{row['batch']:>5} | {row['plain_tokens_per_s']:>11} | "
            f"{row['streamed_tokens_per_s']:>14} | {row['streamed_over_plain']:>14} | "
            f"{row['deltas_per_batch']}"
        )
    out = ROOT / "bench_results" / f"streaming-{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"engine": name, "args": vars(args), "rows": rows}, indent=2))
    if args.continuous:
        engine.sleep()


if __name__ == "__main__":
    main()
