"""vLLM behind the engine protocol: `AsyncLLM` schedules every request continuously.

vLLM brings what the other engines hand-roll or lack: a paged KV cache with automatic prefix
caching, continuous batching, and constrained decoding inside its scheduler. What stays ours:
the prompt (`encode_chat`, so special tokens a user typed stay text; vLLM gets the prompt's
token ids), the stop tokens the checkpoint's generation config names, the text (vLLM returns
token ids and `streaming.RowText` decodes them and finds stop strings, as for the other engines,
so every engine gives the same text for the same tokens), the errors callers branch on, and
the status.

The bridge. `AsyncLLM` belongs to one event loop: its output handler task and its ZMQ sockets
live there. The engine runs that loop on a thread of its own (`vllm-loop`) and every call goes
to it with `asyncio.run_coroutine_threadsafe`, so the engine works the same from synchronous
code (`generate`: tests, benchmarks) and from any caller's event loop (`chat`: the Serve
deployment awaits it without a thread per request). Cancelling the caller's await cancels the
request's task on the engine loop, which closes vLLM's generator, which aborts the request and
frees its KV slot. Sinks (streaming) are called on the engine loop's thread with each delta.

Errors: a request vLLM refuses (too long, a bad schema) or fails alone is a RowFailed (out of
memory named as such); a dead engine core is ModelNotAvailable, as the static engine raises when
it has no model, so the pipeline falls back the same way.

Unload/load shut the engine down and start it again (vLLM's sleep mode keeps the process and
needs CUDA; a restart works on every platform and returns all memory).

Imports vLLM only in `start`: the module itself loads without it (tests skip, `auto` checks).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployments.engine import chatglm3
from deployments.engine.base import (
    CancelCheck,
    ChatEngine,
    EngineCounters,
    GenerationRequest,
    GenerationResult,
    PromptTooLong,
    RequestCancelled,
    RowFailed,
    RowOutcome,
    TextDelta,
    TokenSink,
    never_cancelled,
    with_first_token,
)
from deployments.engine.errors import ModelNotAvailable
from deployments.engine.loading import check_checkpoint
from deployments.engine.memory import memory_report
from deployments.engine.streaming import RowText
from deployments.engine.tokenizer import context_length, encode_chat, load_tokenizer

logger = logging.getLogger(__name__)

# How often generate() looks at its requests' cancel checks while it waits for them.
CANCEL_POLL_S = 0.05
# Our precision names → vLLM's dtype; `auto` is fp32 on CPU (what the static engine runs, so
# greedy replies agree) and the checkpoint's own dtype on CUDA.
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
START_TIMEOUT_S = 900.0
KV_SPARE_TOKENS = 1024
# vLLM's xgrammar backend always turns xgrammar's compile cache on, and xgrammar 0.2.8's cache
# fails on the storyboard schema's string patterns (the `per_rule_fsm_hashes` check that
# constrained.py avoids by turning the cache off): llguidance compiles the same schema.
STRUCTURED_OUTPUTS_BACKEND = "guidance"
STOP_TIMEOUT_S = 60.0


def vllm_installed() -> bool:
    """True when `vllm` can be imported here (found without importing it: that takes seconds)."""
    return importlib.util.find_spec("vllm") is not None


@dataclass
class InFlight:
    """One request on the engine loop: how far it got, for cancellation and the wedge check."""

    started_at: float = field(default_factory=time.monotonic)
    completion_tokens: int = 0


@dataclass
class SchedulerView:
    """The last scheduler stats vLLM reported, plus prefix-cache totals since start."""

    running: int = 0
    waiting: int = 0
    kv_cache_usage: float = 0.0
    prefix_queries: int = 0
    prefix_hits: int = 0
    max_running_seen: int = 0

    def as_dict(self) -> dict[str, Any]:
        rate = self.prefix_hits / self.prefix_queries if self.prefix_queries else 0.0
        return {
            "running_requests": self.running,
            "waiting_requests": self.waiting,
            "max_running_requests_seen": self.max_running_seen,
            "kv_cache_usage": round(self.kv_cache_usage, 4),
            "prefix_cache_queried_tokens": self.prefix_queries,
            "prefix_cache_hit_tokens": self.prefix_hits,
            "prefix_cache_hit_rate": round(rate, 4),
        }


def stat_logger_for(view: SchedulerView):
    """A vLLM stat logger class that copies each scheduler report into `view`."""
    from vllm.v1.metrics.loggers import StatLoggerBase

    class SchedulerViewLogger(StatLoggerBase):
        def __init__(self, vllm_config, engine_index: int = 0):
            self.view = view

        def record(self, scheduler_stats, iteration_stats, mm_cache_stats=None, engine_idx=0):
            if scheduler_stats is None:
                return
            self.view.running = scheduler_stats.num_running_reqs
            self.view.waiting = scheduler_stats.num_waiting_reqs
            self.view.max_running_seen = max(self.view.max_running_seen, self.view.running)
            self.view.kv_cache_usage = scheduler_stats.kv_cache_usage
            prefix = scheduler_stats.prefix_cache_stats
            if prefix is not None:
                self.view.prefix_queries += prefix.queries
                self.view.prefix_hits += prefix.hits

        def log_engine_initialized(self) -> None:
            pass

    return SchedulerViewLogger


class VLLMEngine(ChatEngine):
    def __init__(
        self,
        model_path: str,
        *,
        precision: str = "auto",
        device: str = "auto",
        max_num_seqs: int = 64,
        request_tokens: int = 4096,
        gpu_memory_utilization: float = 0.85,
        wedged_after_s: float = 600.0,
        compile_model: bool = True,
    ):
        """`request_tokens`: KV one request may need (EngineConfig.request_tokens()); on CPU the
        KV cache holds `max_num_seqs` of them. On CUDA vLLM sizes it from
        `gpu_memory_utilization`. `compile_model=False` runs eagerly: no torch.compile warmup
        at start (tens of seconds on a small CPU), slower steps."""
        self.model_path = model_path
        self.precision = precision
        self.device = device
        self.max_num_seqs = max_num_seqs
        self.request_tokens = request_tokens
        self.gpu_memory_utilization = gpu_memory_utilization
        self.wedged_after_s = wedged_after_s
        self.compile_model = compile_model
        self.counters = EngineCounters()
        self.unavailable_reason: str | None = "not loaded yet"
        self.scheduler = SchedulerView()
        self.served_path: Path | None = None  # the native checkpoint vLLM loads
        self.settings: dict[str, Any] = {}
        self._llm = None
        self._tokenizer = None
        self._stop_ids: list[int] = []
        self._max_model_len = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._in_flight: dict[str, InFlight] = {}
        self._lifecycle = threading.Lock()

    # Lifecycle -------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def start(self) -> None:
        with self._lifecycle:
            if self._llm is not None:
                return
            try:
                self._start()
            except ModelNotAvailable as error:
                self.unavailable_reason = str(error)
                self._stop_loop()
                raise
            self.unavailable_reason = None

    def wakeup(self) -> None:
        if not self.loaded:
            self.start()

    def sleep(self) -> None:
        """Shut vLLM down (running requests end as failed rows) and free its memory."""
        with self._lifecycle:
            llm, self._llm = self._llm, None
            self.unavailable_reason = "unloaded"
            if llm is not None and self._loop is not None:
                try:
                    self._on_loop(self._shutdown(llm), STOP_TIMEOUT_S)
                except Exception as error:  # the engine core may be dead already
                    logger.warning("vLLM shutdown: %r", error)
            self._stop_loop()

    def _start(self) -> None:
        path = Path(self.model_path)
        check_checkpoint(path)  # names what is missing before vLLM would, slowly and vaguely
        if not vllm_installed():
            raise ModelNotAvailable(
                path,
                "engine vllm needs vLLM: `pip install -e .[vllm]` on a GPU host, "
                "`make setup-vllm` on CPU",
            )
        if chatglm3.is_original_layout(path):
            try:
                path = chatglm3.converted_copy(path)  # once; vLLM loads native GLM only
            except Exception as error:
                raise ModelNotAvailable(
                    path, f"cannot convert to GlmForCausalLM: {error}"
                ) from error
        self._tokenizer = load_tokenizer(path)
        self._stop_ids = generation_stop_ids(path, self._tokenizer)
        self._max_model_len = context_length(path) or 4096
        self.served_path = path
        self.settings = self._engine_settings(path)
        self._start_loop()
        try:
            self._llm = self._on_loop(self._create(self.settings), START_TIMEOUT_S)
        except Exception as error:
            raise ModelNotAvailable(path, f"vLLM did not start: {error!r}"[:500]) from error
        logger.info("vLLM engine started: %s", self.settings)

    def _engine_settings(self, path: Path) -> dict[str, Any]:
        on_cuda = self._device() == "cuda"
        dtype = DTYPES.get(self.precision) or ("auto" if on_cuda else "float32")
        settings: dict[str, Any] = dict(
            model=str(path),
            tokenizer=str(path),
            dtype=dtype,
            max_model_len=self._max_model_len,
            max_num_seqs=self.max_num_seqs,
            enable_prefix_caching=True,
            # A grammar that allows any whitespace lets a weak (or random) model emit it until
            # its budget runs out; without it every reply closes. Engine-level: the per-request
            # flag is not honoured.
            structured_outputs_config={
                "backend": STRUCTURED_OUTPUTS_BACKEND,
                "disable_any_whitespace": True,
            },
            disable_log_stats=False,
            enable_log_requests=False,
            seed=0,
            enforce_eager=not self.compile_model,
        )
        if not self.compile_model:
            settings["compilation_config"] = {"mode": 0}
        if on_cuda:
            settings["gpu_memory_utilization"] = self.gpu_memory_utilization
        else:
            settings["kv_cache_memory_bytes"] = self._cpu_kv_cache_bytes(path, dtype)
            settings["max_num_batched_tokens"] = max(self._max_model_len, 2048)
        return settings

    def _cpu_kv_cache_bytes(self, path: Path, dtype: str) -> int:
        """`max_num_seqs` requests of `request_tokens` each, at least one full context, plus
        room for vLLM's own blocks (a reserved null block, rounding to blocks)."""
        config = json.loads((path / "config.json").read_text())
        heads = config["num_attention_heads"]
        head_dim = config.get("head_dim") or config["hidden_size"] // heads
        kv_heads = config.get("num_key_value_heads") or heads
        per_token = 2 * config["num_hidden_layers"] * kv_heads * head_dim * DTYPE_BYTES[dtype]
        tokens = max(self.max_num_seqs * self.request_tokens, self._max_model_len) + KV_SPARE_TOKENS
        return tokens * per_token

    def _device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    async def _create(self, settings: dict[str, Any]):
        """On the engine loop, so vLLM's output handler and sockets belong to it."""
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        return AsyncLLM.from_engine_args(
            AsyncEngineArgs(**settings), stat_loggers=[stat_logger_for(self.scheduler)]
        )

    @staticmethod
    async def _shutdown(llm) -> None:
        llm.shutdown()

    def _start_loop(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="vllm-loop", daemon=True)
        self._thread.start()
        ready.wait()
        self._loop = loop

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(STOP_TIMEOUT_S)
        if not loop.is_running():
            loop.close()

    def _on_loop(self, coroutine, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def check_health(self) -> None:
        llm = self._llm
        if llm is not None and llm.errored:
            raise RuntimeError(f"the vLLM engine core has died: {llm.dead_error!r}")
        if self._thread is not None and not self._thread.is_alive():
            raise RuntimeError("the vLLM engine loop thread has stopped")
        oldest = min((f.started_at for f in list(self._in_flight.values())), default=None)
        if oldest is not None and time.monotonic() - oldest > self.wedged_after_s:
            raise RuntimeError(
                f"a request has been running for {time.monotonic() - oldest:.0f} s "
                f"(limit {self.wedged_after_s:.0f} s): replica is wedged"
            )

    # Work ------------------------------------------------------------------------------------
    def generate(
        self,
        requests: list[GenerationRequest],
        cancelled: Sequence[CancelCheck] | None = None,
        sinks: Sequence[TokenSink | None] | None = None,
    ) -> list[RowOutcome]:
        """Every request submitted to vLLM at once (it batches them with whatever else runs);
        blocks until all are done. A request whose `cancelled` check turns true is aborted."""
        checks = list(cancelled) if cancelled is not None else [never_cancelled] * len(requests)
        sinks = list(sinks) if sinks is not None else [None] * len(requests)
        if self._llm is None or self._loop is None:
            raise ModelNotAvailable(self.model_path, self.unavailable_reason or "not loaded")
        submitted = [
            self.submit(request, sink) for request, sink in zip(requests, sinks, strict=True)
        ]
        try:
            outcomes = [
                self._outcome(future, progress, check)
                for (future, progress), check in zip(submitted, checks, strict=True)
            ]
        finally:
            for future, _ in submitted:
                future.cancel()  # a no-op for finished ones; frees the others after an error
        for outcome in outcomes:
            if isinstance(outcome, ModelNotAvailable):
                raise outcome
        return outcomes

    def submit(
        self, request: GenerationRequest, sink: TokenSink | None = None
    ) -> tuple[Future, InFlight]:
        """Start one request on the engine loop; its future holds the outcome."""
        progress = InFlight()
        loop = self._loop
        if loop is None:
            raise ModelNotAvailable(self.model_path, self.unavailable_reason or "not loaded")
        return asyncio.run_coroutine_threadsafe(self._run(request, sink, progress), loop), progress

    def _outcome(self, future: Future, progress: InFlight, cancelled: CancelCheck) -> RowOutcome:
        while True:
            try:
                return future.result(timeout=CANCEL_POLL_S)
            except FutureTimeout:
                if cancelled() and future.cancel():
                    return RequestCancelled(progress.completion_tokens)
            except CancelledError:
                return RequestCancelled(progress.completion_tokens)
            except (RowFailed, ModelNotAvailable) as error:
                return error

    async def chat(self, request: GenerationRequest, sink: TokenSink | None = None):
        """One request, awaited on the caller's event loop without a thread of its own; the
        caller's cancellation aborts it in vLLM. Raises its RowFailed (or ModelNotAvailable)."""
        future, _ = self.submit(request, sink)
        return await asyncio.wrap_future(future)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[TextDelta]:
        """The request's text as it is generated, on the caller's event loop; closing the
        iterator early aborts the request."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[TextDelta] = asyncio.Queue()

        def sink(delta: TextDelta) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, delta)

        task = asyncio.ensure_future(self.chat(request, sink))
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield getter.result()
                    continue
                getter.cancel()
                while not queue.empty():
                    yield queue.get_nowait()
                task.result()  # raises the request's failure
                return
        finally:
            task.cancel()

    async def _run(
        self, request: GenerationRequest, sink: TokenSink | None, progress: InFlight
    ) -> GenerationResult:
        """On the engine loop: one request through vLLM, its deltas to `sink`."""
        llm = self._llm
        if llm is None:
            raise ModelNotAvailable(self.model_path, self.unavailable_reason or "not loaded")
        try:
            prompt = encode_chat(self._tokenizer, request.messages)
        except Exception as error:  # e.g. a template that refuses these messages
            raise RowFailed(f"cannot encode the prompt: {error!r}"[:500]) from error
        budget = min(request.max_new_tokens, self._max_model_len - len(prompt))
        if budget < 1:
            raise PromptTooLong(
                f"the prompt is {len(prompt)} tokens; the model's context is "
                f"{self._max_model_len}: no room to generate"
            )
        from vllm.inputs import TokensPrompt

        request_id = uuid.uuid4().hex
        self._in_flight[request_id] = progress
        # Our decoder, not vLLM's: the text (leading SentencePiece space, partial characters,
        # stop strings) comes out exactly as the other engines give it (engine/streaming.py).
        row = RowText(self._tokenizer, tuple(getattr(request, "stop", ()) or ()), guarded(sink))
        finish = "length"
        first_token_at: float | None = None
        outputs = llm.generate(
            TokensPrompt(prompt_token_ids=prompt),
            self._sampling_params(request, budget),
            request_id,
        )
        try:
            async for output in outputs:
                completion = output.outputs[0]
                new_tokens = list(completion.token_ids)
                if first_token_at is None and new_tokens:
                    first_token_at = time.perf_counter()
                if completion.finish_reason is not None:
                    if completion.finish_reason not in ("stop", "length"):  # abort, error
                        raise RowFailed(f"vLLM ended this request: {completion.finish_reason}")
                    finish = completion.finish_reason
                    stop = completion.stop_reason
                    if isinstance(stop, int) and new_tokens and new_tokens[-1] == stop:
                        new_tokens.pop()  # the stop token is not text, as in the other engines
                if any(row.add(token) for token in new_tokens):
                    break  # a stop string: closing vLLM's generator aborts the request
                progress.completion_tokens = len(row.tokens)
        except (RowFailed, ModelNotAvailable):
            self.counters.failures += 1
            raise
        except Exception as error:
            self.counters.failures += 1
            raise self._mapped(error) from error
        finally:
            await outputs.aclose()
            self._in_flight.pop(request_id, None)
        result = row.finish(len(prompt), finish)
        self.counters.record_request(result.completion_tokens)
        # busy_s: summed time requests spent in vLLM (its scheduler queue included), for the
        # mean per request; requests overlap, so it is no share of wall time.
        self.counters.busy_s += time.monotonic() - progress.started_at
        return with_first_token(result, first_token_at)

    def _sampling_params(self, request: GenerationRequest, budget: int):
        from vllm.sampling_params import RequestOutputKind, SamplingParams, StructuredOutputsParams

        greedy = request.temperature <= 0
        structured = (
            StructuredOutputsParams(json=request.json_schema)
            if request.json_schema is not None
            else None
        )
        return SamplingParams(
            n=1,
            temperature=0.0 if greedy else request.temperature,
            top_p=1.0 if greedy else request.top_p,
            seed=None if greedy else getattr(request, "seed", None),
            max_tokens=budget,
            min_tokens=budget if request.ignore_eos else 0,
            ignore_eos=request.ignore_eos,
            stop_token_ids=None if request.ignore_eos else list(self._stop_ids),
            detokenize=False,  # RowText decodes (see _run)
            structured_outputs=structured,
            output_kind=RequestOutputKind.DELTA,
        )

    def _mapped(self, error: BaseException) -> BaseException:
        """vLLM's failure as the exception callers branch on."""
        from vllm.v1.engine.exceptions import EngineDeadError

        if isinstance(error, EngineDeadError):
            self.unavailable_reason = f"the vLLM engine core died: {error}"
            return ModelNotAvailable(self.model_path, self.unavailable_reason)
        cause = error.__cause__ or error
        text = f"{type(cause).__name__}: {cause}"
        if "out of memory" in text.lower() or type(cause).__name__ == "OutOfMemoryError":
            return RowFailed(f"out of memory generating this request: {text}"[:500])
        if "maximum context length" in text or "longer than the maximum model length" in text:
            return PromptTooLong(text[:500])
        return RowFailed(f"vLLM failed this request: {text}"[:500])

    def status(self) -> dict[str, Any]:
        llm = self._llm
        return {
            "engine": "vllm",
            "model_path": self.model_path,
            "served_path": str(self.served_path) if self.served_path else None,
            "loaded": self.loaded,
            "reason": self.unavailable_reason,
            "counters": {**self.counters.as_dict(), "in_flight": len(self._in_flight)},
            "scheduler": {
                **self.scheduler.as_dict(),
                "unfinished_requests": llm.get_num_unfinished_requests() if llm else 0,
            },
            "requested_precision": self.precision,
            "dtype": self.settings.get("dtype"),
            "max_num_seqs": self.max_num_seqs,
            "max_model_len": self._max_model_len,
            "kv_cache_memory_bytes": self.settings.get("kv_cache_memory_bytes"),
            "gpu_memory_utilization": self.settings.get("gpu_memory_utilization"),
            "vllm_cpu_threads_bind": os.environ.get("VLLM_CPU_OMP_THREADS_BIND", "auto"),
            **memory_report(),
        }


def guarded(sink: TokenSink | None) -> TokenSink:
    """`sink`, or a no-op; one that fails (its caller's loop gone) is logged once and dropped,
    the request goes on unstreamed."""
    if sink is None:
        return lambda delta: None
    live = [sink]

    def send(delta: TextDelta) -> None:
        if not live:
            return
        try:
            live[0](delta)
        except Exception as error:
            logger.warning("a token sink failed, its request goes on unstreamed: %r", error)
            live.clear()

    return send


def generation_stop_ids(path: Path, tokenizer) -> list[int]:
    """The stop tokens the checkpoint's generation config names (as the static engine stops on
    them), else the tokenizer's EOS."""
    try:
        config = json.loads((path / "generation_config.json").read_text())
        eos = config.get("eos_token_id")
    except (OSError, ValueError):
        eos = None
    if eos is None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return []
    return [eos] if isinstance(eos, int) else list(eos)
