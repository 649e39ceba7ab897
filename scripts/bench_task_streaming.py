"""What generating a task's reply through the streaming call costs against the plain call, end
to end through Serve: the same storyboard requests sent to one ChatGLM replica as `chat` and as
`chat_stream` (the pipeline's own calls: pieces at most every half progress interval, each fed
to ReplyFeed and a ProgressReporter as a task does), rounds alternating, sequential and
concurrent.

    python scripts/bench_task_streaming.py --model models/tiny --new-tokens 400 --concurrency 1 8

Greedy, EOS ignored (every reply has exactly --new-tokens), constrained decoding (the task
path's JSON schema), a local Ray cluster of its own. Prints a table: replies/s and tokens/s of
each call, and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import ray
from ray import serve

from deployments.chatglm import ChatGLMDeployment
from deployments.engine import GenerationRequest
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.prompts import build_messages, script_json_schema
from serve_app.config import Settings
from serve_app.pipeline import ReplyFeed, ScriptPipeline
from serve_app.task_progress import ProgressReporter

REQUEST = ScriptRequest(prompt="制作一段关于森林探险的短视频")


async def nowhere(*_):
    return True


async def one(
    pipeline: ScriptPipeline, generation: GenerationRequest, streamed: bool, interval_s: float
) -> int:
    if not streamed:
        return (await pipeline._chat(generation)).completion_tokens
    reporter = ProgressReporter(nowhere, interval_s, 10)
    feed = ReplyFeed(reporter, REQUEST, generation.max_new_tokens)
    result = await pipeline._chat_streamed(generation, feed)  # exactly as a task's reply
    await reporter.close()
    return result.completion_tokens


async def rate(pipeline, generation, streamed: bool, concurrency: int) -> tuple[float, float]:
    started = time.perf_counter()
    interval_s = pipeline.settings.task_progress_interval_s
    tokens = await asyncio.gather(
        *(one(pipeline, generation, streamed, interval_s) for _ in range(concurrency))
    )
    seconds = time.perf_counter() - started
    return concurrency / seconds, sum(tokens) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/tiny")
    parser.add_argument("--new-tokens", type=int, default=400)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--progress-interval-s", type=float, default=1.0)
    args = parser.parse_args()

    settings = Settings(
        model_path=args.model,
        max_new_tokens=args.new_tokens,
        task_progress_interval_s=args.progress_interval_s,
    )
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    handle = serve.run(
        ChatGLMDeployment.options(user_config=settings.batching_user_config()).bind(
            settings.chatglm_config()
        ),
        name="bench-task-streaming",
        route_prefix=None,
    )
    generation = GenerationRequest(
        messages=build_messages(REQUEST),
        max_new_tokens=args.new_tokens,
        temperature=0.0,
        json_schema=script_json_schema(REQUEST),
        ignore_eos=True,
    )

    pipeline = ScriptPipeline(handle, None, settings)

    async def measure():
        await rate(pipeline, generation, True, 1)  # warm-up: both paths, caches
        await rate(pipeline, generation, False, 1)
        rows = []
        for concurrency in args.concurrency:
            results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
            for round_index in range(args.rounds):
                order = (False, True) if round_index % 2 == 0 else (True, False)
                for streamed in order:
                    results[streamed].append(
                        await rate(pipeline, generation, streamed, concurrency)
                    )
            plain = statistics.median(t for _, t in results[False])
            streamed = statistics.median(t for _, t in results[True])
            rows.append((concurrency, plain, streamed))
        return rows

    rows = asyncio.run(measure())
    print("| concurrent replies | plain tok/s | streamed tok/s | streamed / plain |")
    print("| --- | --- | --- | --- |")
    for concurrency, plain, streamed in rows:
        print(f"| {concurrency} | {plain:.1f} | {streamed:.1f} | {streamed / plain:.2f} |")
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
