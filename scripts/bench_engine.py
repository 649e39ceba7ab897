"""Engine benchmark, no Ray: load time, peak memory, tokens/s per batch size, 400-token script time.

    python scripts/bench_engine.py --model models/bench --precision fp32 bf16
    python scripts/bench_engine.py --model models/bench --continuous      # + the continuous engine
    .venv-vllm/bin/python scripts/bench_engine.py --model models/bench --vllm   # + vLLM (CPU build)
    python scripts/bench_engine.py --full-size --device cuda --precision fp16 bf16

`--full-size` builds a random-weight model with ChatGLM3-6B's shapes directly on the device
(nothing written to disk); `--model` then only supplies the tokenizer. Every request generates
exactly --new-tokens (EOS ignored), greedy, from the service's own prompts for five storyboard
requests in turn (loadtests/prompts.py BENCH_BODIES); `--without-prefix-cache` also measures the
static engine with its prefix cache off (every request prefilled whole).
Results print as a table and go to bench_results/engine-<label>.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from deployments.engine import (
    ChatEngine,
    GenerationRequest,
    LoadedModel,
    StaticBatchingEngine,
    load_model,
    results_or_raise,
)
from deployments.engine.chatglm3 import glm_config
from deployments.engine.continuous_batching import ContinuousBatchingEngine
from deployments.engine.loading import resolve_device
from deployments.engine.quantization import DTYPES
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.prompts import build_messages
from loadtests.prompts import BENCH_BODIES

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench_results"
MB = 1024 * 1024

# THUDM/chatglm3-6b's config.json, the fields the GLM conversion reads.
CHATGLM3_6B = {
    "num_layers": 28,
    "hidden_size": 4096,
    "ffn_hidden_size": 13696,
    "num_attention_heads": 32,
    "kv_channels": 128,
    "multi_query_attention": True,
    "multi_query_group_num": 2,
    "padded_vocab_size": 65024,
    "seq_length": 8192,
    "layernorm_epsilon": 1e-5,
    "add_qkv_bias": True,
    "rmsnorm": True,
    "add_bias_linear": False,
    "post_layer_norm": True,
}


@dataclass
class PrecisionResult:
    precision: str
    device: str
    parameters: int
    load_time_s: float
    peak_memory_mb: float
    tokens_per_s: dict[int, float] = field(default_factory=dict)
    continuous_tokens_per_s: dict[int, float] = field(default_factory=dict)
    no_prefix_cache_tokens_per_s: dict[int, float] = field(default_factory=dict)
    vllm_tokens_per_s: dict[int, float] = field(default_factory=dict)
    script_400_tokens_s: float | None = None
    ttft_p50_s: dict[str, float] = field(default_factory=dict)  # engine → first-token p50


def prebuilt(engine_class: type[ChatEngine], loaded: LoadedModel, **options: Any) -> ChatEngine:
    """`engine_class`, as deployed, around a model already in memory instead of loaded from disk."""

    class Prebuilt(engine_class):
        def _load(self) -> LoadedModel:
            return loaded

    return Prebuilt("<in memory>", precision=loaded.precision, device=loaded.device, **options)


def build_full_size(tokenizer_dir: Path, precision: str, device: str) -> LoadedModel:
    """Random weights in ChatGLM3-6B's shapes, initialised on `device` (~12.5 GB in fp16)."""
    from transformers import AutoTokenizer, GlmForCausalLM

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = glm_config(CHATGLM3_6B, [tokenizer.eos_token_id])
    with torch.device(device):
        model = GlmForCausalLM._from_config(config, dtype=DTYPES[precision]).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if device == "cuda":
        torch.cuda.synchronize()
    return LoadedModel(model, tokenizer, device, precision, time.perf_counter() - started)


def peak_memory_mb(device: str) -> float:
    """Peak GPU allocation on CUDA; peak RSS of this process on CPU."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / MB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_requests(batch: int, new_tokens: int) -> list[GenerationRequest]:
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


def tokens_per_s(engine: ChatEngine, batch: int, new_tokens: int) -> float:
    """All `batch` requests handed over at once, as a full @serve.batch (or burst) would."""
    started = time.perf_counter()
    results = results_or_raise(engine.generate(bench_requests(batch, new_tokens)))
    return sum(r.completion_tokens for r in results) / (time.perf_counter() - started)


def ttft_p50(engine: ChatEngine, runs: int = 5) -> float:
    """Median time from handing one request over to its first generated token (batch of 1)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        [result] = results_or_raise(engine.generate(bench_requests(1, 8)))
        times.append(result.first_token_at - started)
    return round(sorted(times)[len(times) // 2], 4)


def rates_per_batch(engine: ChatEngine, label: str, args: argparse.Namespace) -> dict[int, float]:
    """Start `engine`, warm it up, and measure tokens/s at each of --batch-sizes."""
    engine.start()
    # Warm-up: first-call allocations, kernel selection, and the shared instructions' prefix
    # found and cached, as in a serving replica after its first requests.
    tokens_per_s(engine, 2, 4)
    rates = {}
    for batch in args.batch_sizes:
        rates[batch] = round(tokens_per_s(engine, batch, args.new_tokens), 1)
        print(f"  {label}, batch {batch}: {rates[batch]} tokens/s", flush=True)
    return rates


def bench_precision(args: argparse.Namespace, precision: str) -> PrecisionResult:
    device = resolve_device(args.device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if args.vllm_only:
        result = PrecisionResult(precision, device, 0, 0.0, 0.0)
        bench_vllm(args, precision, device, result)
        return result
    if args.full_size:
        loaded = build_full_size(args.model, precision, device)
    else:
        loaded = load_model(args.model, precision, device)
    engine = prebuilt(StaticBatchingEngine, loaded)
    result = PrecisionResult(
        precision, device, loaded.parameters, round(loaded.load_time_s, 2), 0.0
    )
    result.tokens_per_s = rates_per_batch(engine, f"{precision} static", args)
    started = time.perf_counter()
    results_or_raise(engine.generate(bench_requests(1, args.script_tokens)))
    result.script_400_tokens_s = round(time.perf_counter() - started, 2)
    result.ttft_p50_s["static"] = ttft_p50(engine)
    result.peak_memory_mb = round(peak_memory_mb(device), 1)  # before CB sizes its own cache
    if args.without_prefix_cache:
        plain = prebuilt(StaticBatchingEngine, loaded, prefix_cache_entries=0)
        result.no_prefix_cache_tokens_per_s = rates_per_batch(
            plain, f"{precision} static without prefix cache", args
        )
    if args.continuous:
        continuous = prebuilt(
            ContinuousBatchingEngine, loaded, max_batch_size=max(args.batch_sizes)
        )
        result.continuous_tokens_per_s = rates_per_batch(
            continuous, f"{precision} continuous", args
        )
        continuous.sleep()
    if args.vllm:
        bench_vllm(args, precision, device, result)
    return result


def bench_vllm(args: argparse.Namespace, precision: str, device: str, result) -> None:
    from deployments.engine.vllm_engine import VLLMEngine

    engine = VLLMEngine(
        str(args.model),
        precision=precision,
        device=device,
        max_num_seqs=max(args.batch_sizes),
        request_tokens=2048,
    )
    started = time.perf_counter()
    result.vllm_tokens_per_s = rates_per_batch(engine, f"{precision} vllm", args)
    result.ttft_p50_s["vllm"] = ttft_p50(engine)
    print(f"  vllm start + measurements: {time.perf_counter() - started:.1f} s", flush=True)
    engine.sleep()


def print_table(results: list[PrecisionResult]) -> None:
    batches = sorted(
        {b for r in results for rates in (r.tokens_per_s, r.vllm_tokens_per_s) for b in rates}
    )
    header = "".join(f"{f'b={b} tok/s':>12}" for b in batches)
    print(f"{'precision':<11}{'device':<7}{'load s':>8}{'peak MB':>10}{header}{'400 tok s':>11}")
    for r in results:
        for label, rates in (
            (r.precision, r.tokens_per_s),
            (f"{r.precision} noPC", r.no_prefix_cache_tokens_per_s),
            (f"{r.precision} CB", r.continuous_tokens_per_s),
            (f"{r.precision} vLLM", r.vllm_tokens_per_s),
        ):
            if not rates:
                continue
            cells = "".join(f"{rates.get(b, float('nan')):>12.1f}" for b in batches)
            script = f"{r.script_400_tokens_s:>11.2f}" if label == r.precision else ""
            print(
                f"{label:<11}{r.device:<7}{r.load_time_s:>8.2f}{r.peak_memory_mb:>10.0f}"
                f"{cells}{script}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "bench")
    parser.add_argument("--full-size", action="store_true", help="Random ChatGLM3-6B shapes.")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=sorted(DTYPES))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 32, 64])
    parser.add_argument("--new-tokens", type=int, default=64, help="Tokens per request.")
    parser.add_argument("--script-tokens", type=int, default=400)
    parser.add_argument(
        "--continuous", action="store_true", help="Also time the continuous-batching engine."
    )
    parser.add_argument(
        "--vllm",
        action="store_true",
        help="Also time the vLLM engine (run with .venv-vllm/bin/python: `make setup-vllm`).",
    )
    parser.add_argument(
        "--vllm-only",
        action="store_true",
        help="Only the vLLM engine (vLLM's venv pins transformers 5.19, where the static "
        "engine's prefix cache fails: measure static from .venv).",
    )
    parser.add_argument(
        "--without-prefix-cache",
        action="store_true",
        help="Also measure the static engine with its prefix cache off (label noPC).",
    )
    parser.add_argument("--label", default=None, help="Name of the JSON results file.")
    args = parser.parse_args(argv)

    print(f">> torch {torch.__version__}, {torch.get_num_threads()} threads, model {args.model}")
    results = []
    for precision in args.precision:
        results.append(bench_precision(args, precision))
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    print_table(results)
    for r in results:
        firsts = ", ".join(
            f"{name} {seconds * 1000:.0f} ms" for name, seconds in r.ttft_p50_s.items()
        )
        print(f"time to first token p50, {r.precision}, 1 request: {firsts}")
    RESULTS_DIR.mkdir(exist_ok=True)
    label = args.label or ("chatglm3-6b-random" if args.full_size else args.model.name)
    out = RESULTS_DIR / f"engine-{label}.json"
    out.write_text(json.dumps([asdict(r) for r in results], indent=2))
    print(f">> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
