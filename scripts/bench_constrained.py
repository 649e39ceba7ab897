"""What grammar-constrained decoding costs per generated token on the batched engine path.

    python scripts/bench_constrained.py MODEL_DIR [--batch-sizes 1 4 8] [--max-new-tokens 256]

For each batch size it runs the same prompts free (ignore_eos, so every row does the full budget)
and constrained to the VideoScript schema, and reports wall time per decoding step plus the CPU
time spent inside the logits processor itself, which a busy machine inflates far less than wall
time. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time

from deployments.engine import (
    GenerationRequest,
    StaticBatchingEngine,
    constrained,
    results_or_raise,
)
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.parser import ScriptParseError, parse_script
from deployments.storyboard.prompts import build_messages, script_json_schema

PROMPTS = [
    ScriptRequest(prompt="制作一段关于森林探险的短视频"),
    ScriptRequest(prompt="A 30-second commercial for a new smartwatch", num_scenes=4),
    ScriptRequest(prompt="拍一个介绍成都美食火锅的vlog"),
    ScriptRequest(prompt="Explain how photosynthesis works"),
]


class ProcessorClock:
    """Adds up the thread CPU time spent in JsonSchemaLogitsProcessor.__call__."""

    def __init__(self):
        self.seconds = 0.0
        self.calls = 0
        self._original = constrained.JsonSchemaLogitsProcessor.__call__

    def install(self) -> None:
        clock = self
        original = self._original

        def timed(processor, input_ids, scores):
            started = time.thread_time()
            try:
                return original(processor, input_ids, scores)
            finally:
                clock.seconds += time.thread_time() - started
                clock.calls += 1

        constrained.JsonSchemaLogitsProcessor.__call__ = timed

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0


def requests_for(batch_size: int, budget: int, schema: bool) -> list[GenerationRequest]:
    chosen = [PROMPTS[i % len(PROMPTS)] for i in range(batch_size)]
    return [
        GenerationRequest(
            build_messages(request),
            max_new_tokens=budget,
            temperature=0,
            json_schema=script_json_schema(request) if schema else None,
            ignore_eos=not schema,
        )
        for request in chosen
    ]


def run(engine, requests) -> tuple[float, int, list]:
    started = time.perf_counter()
    results = results_or_raise(engine.generate(requests))
    return time.perf_counter() - started, max(r.completion_tokens for r in results), results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    engine = StaticBatchingEngine(args.model_dir, device="cpu")
    engine.start()
    loaded = engine._model
    started = time.perf_counter()
    toolkit = constrained.grammar_toolkit(
        loaded.tokenizer, loaded.model.config.vocab_size, [loaded.tokenizer.eos_token_id]
    )
    toolkit_s = time.perf_counter() - started
    started = time.perf_counter()
    toolkit.compiled(script_json_schema(PROMPTS[0]))
    compile_s = time.perf_counter() - started
    print(
        f"model {args.model_dir}: vocab {loaded.model.config.vocab_size}, "
        f"tokenizer setup {toolkit_s * 1000:.0f} ms, schema compile {compile_s * 1000:.0f} ms"
    )

    clock = ProcessorClock()
    clock.install()
    print(
        "| batch | free ms/step | constrained ms/step | processor CPU ms/step "
        "| processor CPU ms/row-step | valid JSON |"
    )
    print("|---|---|---|---|---|---|")
    for batch_size in args.batch_sizes:
        free, bound, processor, valid = [], [], [], 0
        for _ in range(args.repeats):
            seconds, steps, _ = run(engine, requests_for(batch_size, args.max_new_tokens, False))
            free.append(seconds / steps)
            clock.reset()
            seconds, steps, results = run(
                engine, requests_for(batch_size, args.max_new_tokens, True)
            )
            bound.append(seconds / steps)
            processor.append(clock.seconds / clock.calls)
            for result in results:
                try:
                    parse_script(result.text)
                    valid += result.finish_reason == "stop"
                except ScriptParseError:
                    pass
        per_step = statistics.median(processor)
        print(
            f"| {batch_size} | {statistics.median(free) * 1000:.2f} "
            f"| {statistics.median(bound) * 1000:.2f} | {per_step * 1000:.3f} "
            f"| {per_step * 1000 / batch_size:.3f} | {valid}/{batch_size * args.repeats} |"
        )


if __name__ == "__main__":
    main()
