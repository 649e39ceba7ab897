"""Continuous batching: transformers' persistent manager schedules requests token by token.

Each request joins the running batch as soon as there is room and leaves it when it is done, so
a short reply never waits for a long one and nothing waits for a batch to fill. What the manager
cannot do decides what this engine refuses (both checked in `submit`, before any work):

- constrained decoding: the JSON-schema logits processor keeps one grammar matcher per batch row
  and is built per `generate()` call; the manager runs one processor list for its whole life, so
  `json_schema` requests are a ValueError (`EngineConfig` refuses `engine: continuous` with
  `constrained_decoding` at deploy time);
- greedy and sampled requests in one manager: `do_sample` is fixed when the manager is built
  (from the engine's `temperature`). Within sampling, temperature and top_p are per request
  (transformers' per-request warpers), where the manager has a warper for them.

A dispatcher thread turns the manager's finished outputs into `concurrent.futures.Future`
results, so callers wait without a thread of their own: `generate` blocks on the futures and
`chat` awaits one from an event loop. Cancelling a future cancels its request in the manager.

A request with a sink or stop strings is added in the manager's streaming mode: the dispatcher
gets its tokens step by step and feeds them to the request's RowText (engine/streaming.py),
which sends its text to the sink and ends the request (cancelled in the manager, finish reason
"stop") once a stop string is complete. `seed` is not applied: the manager samples every
request from one generator (best effort, as OpenAI's seed; documented in README).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from deployments.engine.base import (
    CancelCheck,
    GenerationRequest,
    GenerationResult,
    PromptTooLong,
    RequestCancelled,
    RowFailed,
    RowOutcome,
    TokenSink,
    never_cancelled,
    with_first_token,
)
from deployments.engine.checkpoint_engine import CheckpointEngine
from deployments.engine.loading import ModelNotAvailable, free_memory
from deployments.engine.static_batching import context_positions, decode_row, eos_token_ids
from deployments.engine.streaming import GuardedSink, RowText
from deployments.engine.tokenizer import encode_chat

logger = logging.getLogger(__name__)

# Tokens one forward step may take (decode tokens plus prefill chunks). It bounds the step's
# activations and the attention mask (steps × cache tokens) that paged SDPA needs.
MAX_STEP_TOKENS = 2048
# How often generate() looks at its requests' cancel checks while it waits for them.
CANCEL_POLL_S = 0.05


@dataclass
class PendingRequest:
    future: Future
    prompt_tokens: int
    budget: int
    stop_ids: set[int]
    submitted_at: float
    text: RowText | None = None  # streamed (a sink or stop strings): tokens decoded as they come


class ContinuousBatchingEngine(CheckpointEngine):
    def __init__(
        self,
        model_path: str,
        *,
        max_batch_size: int = 8,
        temperature: float = 0.0,
        top_p: float = 1.0,
        **checkpoint: Any,
    ):
        """`checkpoint`: CheckpointEngine's keywords (precision, device, torch_threads, ...)."""
        super().__init__(model_path, **checkpoint)
        self.max_batch_size = max_batch_size
        self.temperature = temperature
        self.top_p = top_p
        self._manager = None
        self._dispatcher: threading.Thread | None = None
        self._pending: dict[str, PendingRequest] = {}
        self._lock = threading.Lock()  # guards the model, the manager, _pending, the busy clock
        self._busy_since: float | None = None

    @property
    def sampling(self) -> bool:
        return self.temperature > 0

    # Lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        loaded = self._load()
        manager = None
        try:
            manager = loaded.model.init_continuous_batching(
                generation_config=self._generation_config(loaded.model),
                continuous_batching_config=self._batching_config(),
            )
            manager.warmup()  # sizes the paged cache now; captures CUDA graphs where used
            manager.start()
        except Exception as error:  # e.g. out of memory sizing the paged cache
            self.unavailable_reason = f"continuous batching did not start: {error!r}"[:500]
            loaded = manager = None  # the model's last references: free_memory can return it
            free_memory()
            raise ModelNotAvailable(self.model_path, self.unavailable_reason) from error
        dispatcher = threading.Thread(
            target=self._deliver_results,
            args=(manager, loaded.tokenizer),
            name="cb-dispatcher",
            daemon=True,
        )
        with self._lock:
            self._model, self._manager, self._dispatcher = loaded, manager, dispatcher
            self.unavailable_reason = None
        dispatcher.start()

    def sleep(self) -> None:
        """Stop taking requests, let the running ones finish, then free the model and its cache."""
        with self._lock:
            manager, dispatcher = self._manager, self._dispatcher
            self._model = self._manager = self._dispatcher = None
            self.unavailable_reason = "unloaded"
        if manager is not None:
            manager.stop(block=True)
            manager.destroy()
        if dispatcher is not None:
            dispatcher.join()
        del manager, dispatcher  # the last references to the model: free_memory can return it
        free_memory()

    def check_health(self) -> None:
        manager = self._manager
        if manager is not None and not manager.is_running():
            error = manager.background_thread_status.fatal_error
            raise RuntimeError(f"the continuous batching loop has stopped: {error!r}")
        with self._lock:
            oldest = min((p.submitted_at for p in self._pending.values()), default=None)
        if oldest is not None and time.monotonic() - oldest > self.wedged_after_s:
            raise RuntimeError(
                f"a request has been pending for {time.monotonic() - oldest:.0f} s "
                f"(limit {self.wedged_after_s:.0f} s): replica is wedged"
            )

    # Work ------------------------------------------------------------------------------------
    def generate(
        self,
        requests: list[GenerationRequest],
        cancelled: Sequence[CancelCheck] | None = None,
        sinks: Sequence[TokenSink | None] | None = None,
    ) -> list[RowOutcome]:
        """Each request submitted on its own: one the manager refuses or fails is a RowFailed in
        its place; one whose `cancelled` check turns true is cancelled in the manager."""
        checks = list(cancelled) if cancelled is not None else [never_cancelled] * len(requests)
        futures: list[Future | RowFailed] = []
        try:
            for request, sink in zip(requests, sinks or [None] * len(requests), strict=True):
                try:
                    futures.append(self.submit(request, sink))
                except PromptTooLong as error:
                    futures.append(error)
                except ValueError as error:  # this request alone cannot run here
                    futures.append(RowFailed(str(error)))
            return [
                self._outcome(future, check) for future, check in zip(futures, checks, strict=True)
            ]
        finally:
            for future in futures:
                if isinstance(future, Future):
                    future.cancel()  # a no-op for finished ones; frees the others after an error

    def _outcome(self, future: Future | RowFailed, cancelled: CancelCheck) -> RowOutcome:
        if isinstance(future, RowFailed):
            return future
        while True:
            try:
                return future.result(timeout=CANCEL_POLL_S)
            except FutureTimeout:
                if cancelled() and future.cancel():
                    return RequestCancelled(0)
            except CancelledError:
                return RequestCancelled(0)
            except Exception as error:  # the manager failed this request
                return RowFailed(str(error))

    async def chat(
        self, request: GenerationRequest, sink: TokenSink | None = None
    ) -> GenerationResult:
        """One request, awaited on the caller's event loop without occupying a thread."""
        return await asyncio.wrap_future(self.submit(request, sink))

    def submit(self, request: GenerationRequest, sink: TokenSink | None = None) -> Future:
        """Queue one request; the future holds its result. Refuses what the manager cannot run
        (ValueError; PromptTooLong when the prompt leaves no room). With a sink, its text is
        sent there as it is generated."""
        if request.json_schema is not None:
            raise ValueError(
                "constrained decoding (json_schema) is not supported by the continuous engine: "
                "transformers' continuous batching runs no per-request logits processors; "
                "use engine: static"
            )
        loaded, manager = self._model, self._manager
        if loaded is None or manager is None:
            raise ModelNotAvailable(self.model_path, self.unavailable_reason or "not loaded")
        sampling = self._sampling_kwargs(request, manager)
        prompt = encode_chat(loaded.tokenizer, request.messages)
        context = context_positions(loaded.model)
        budget = min(request.max_new_tokens, context - len(prompt))
        if budget < 1:
            raise PromptTooLong(
                f"the prompt is {len(prompt)} tokens; the model's context is {context}: "
                "no room to generate"
            )
        if len(prompt) + budget > self.kv_cache_tokens:
            raise PromptTooLong(
                f"{len(prompt)} prompt + {budget} new tokens exceed the KV cache "
                f"of {self.kv_cache_tokens} tokens (kv_cache_tokens)"
            )
        stop_ids = [] if request.ignore_eos else eos_token_ids(loaded.model)
        request_id = uuid.uuid4().hex
        streamed = sink is not None or bool(request.stop)
        text = (
            RowText(loaded.tokenizer, request.stop, GuardedSink(sink) if sink else None)
            if streamed
            else None
        )
        pending = PendingRequest(
            Future(), len(prompt), budget, set(stop_ids), time.monotonic(), text
        )
        with self._lock:  # tracked before it is queued: a quick result must find it
            self._track(request_id, pending)
        accepted = manager.add_request(
            prompt,
            request_id=request_id,
            max_new_tokens=budget,
            streaming=streamed,
            record_timestamps=True,  # the first one is the request's first token's time
            eos_token_id=stop_ids or -1,  # -1: no stop token, the budget ends the request
            **sampling,
        )
        if accepted is None:  # unloading, or the loop died
            with self._lock:
                self._untrack(request_id)
            raise ModelNotAvailable(self.model_path, "the continuous batching loop is not running")
        pending.future.add_done_callback(self._cancel_when_cancelled(request_id))
        return pending.future

    def _sampling_kwargs(self, request: GenerationRequest, manager) -> dict[str, float]:
        """Per-request temperature and top_p, where the manager has a per-request warper."""
        if (request.temperature > 0) != self.sampling:
            mode = "sampling" if self.sampling else "greedy"
            raise ValueError(
                f"this continuous engine does {mode} decoding (temperature {self.temperature:g}) "
                f"and cannot mix in a request with temperature {request.temperature:g}: "
                "transformers' manager fixes do_sample when it starts"
            )
        if not self.sampling:
            return {}
        wanted = {"temperature": float(request.temperature), "top_p": float(request.top_p)}
        engine_values = {"temperature": self.temperature, "top_p": self.top_p}
        supported = manager.logit_processor.supported_keys
        for key, value in wanted.items():
            if key not in supported and value != engine_values[key]:
                raise ValueError(
                    f"{key} {value:g} differs from the engine's {engine_values[key]:g}, which "
                    "the manager applies to every request"
                )
        return {key: value for key, value in wanted.items() if key in supported}

    def _generation_config(self, model):
        config = copy.deepcopy(model.generation_config)
        config.eos_token_id = eos_token_ids(model) or -1
        config.do_sample = self.sampling
        config.temperature = self.temperature if self.sampling else None
        config.top_p = self.top_p if self.sampling else None
        return config

    def _batching_config(self):
        from transformers import ContinuousBatchingConfig

        config = ContinuousBatchingConfig(
            max_batch_tokens=MAX_STEP_TOKENS,
            max_requests_per_batch=self.max_batch_size,
            per_request_processors=self.sampling,
        )
        config.num_blocks = math.ceil(self.kv_cache_tokens / config.page_size)
        return config

    # Bookkeeping (any thread) ----------------------------------------------------------------
    def _track(self, request_id: str, pending: PendingRequest) -> None:
        """Called with the lock held."""
        if not self._pending:
            self._busy_since = time.monotonic()
        self._pending[request_id] = pending

    def _untrack(self, request_id: str) -> PendingRequest | None:
        """Called with the lock held."""
        pending = self._pending.pop(request_id, None)
        if pending is not None and not self._pending and self._busy_since is not None:
            self.counters.busy_s += time.monotonic() - self._busy_since
            self._busy_since = None
        return pending

    def _cancel_when_cancelled(self, request_id: str):
        def cancel(future: Future) -> None:
            if not future.cancelled():
                return
            with self._lock:
                pending, manager = self._untrack(request_id), self._manager
            if pending is not None and manager is not None:
                manager.cancel_request(request_id)

        return cancel

    def _deliver_results(self, manager, tokenizer) -> None:
        """Dispatcher thread: resolve each finished request's future until the manager stops."""
        while True:
            output = manager.get_result(timeout=0.2)
            if output is None:
                if not manager.is_running():
                    break
                continue
            if output.is_finished():
                self._finish(output, tokenizer)
            else:
                self._stream(output, manager)
        with self._lock:
            stranded = [self._untrack(request_id) for request_id in list(self._pending)]
        for pending in stranded:
            if pending.future.set_running_or_notify_cancel():
                self.counters.failures += 1
                pending.future.set_exception(
                    RuntimeError("the continuous batching loop stopped before this request ended")
                )

    def _stream(self, output, manager) -> None:
        """A streamed request's progress: new tokens to its RowText; once a stop string is
        complete the request ends here (cancelled in the manager) with finish reason stop."""
        with self._lock:
            pending = self._pending.get(output.request_id)
        if pending is None or pending.text is None:
            return
        if self._feed(pending, output.generated_tokens):
            with self._lock:
                self._untrack(output.request_id)
            manager.cancel_request(output.request_id)
            result = pending.text.finish(pending.prompt_tokens, "stop")
            self._resolve(pending, with_first_token(result, first_token_at(output)))

    @staticmethod
    def _feed(pending: PendingRequest, tokens: list[int]) -> bool:
        """Feed the tokens not fed yet; True once the row ended (a stop token or string)."""
        text = pending.text
        for token in tokens[len(text.tokens) : pending.budget]:
            if token in pending.stop_ids or text.add(token):
                return True
        return False

    def _finish(self, output, tokenizer) -> None:
        with self._lock:
            pending = self._untrack(output.request_id)
        if pending is None:
            return  # cancelled, or ended at a stop string, meanwhile
        if output.error is not None:
            if pending.future.set_running_or_notify_cancel():
                self.counters.failures += 1
                pending.future.set_exception(RuntimeError(f"generation failed: {output.error}"))
            return
        tokens, prompt_tokens = output.generated_tokens, pending.prompt_tokens
        if pending.text is not None:
            ended_early = self._feed(pending, tokens)
            stopped = ended_early or len(tokens) > len(pending.text.tokens)
            result = pending.text.finish(prompt_tokens, "stop" if stopped else "length")
        else:
            result = decode_row(tokenizer, tokens, prompt_tokens, pending.budget, pending.stop_ids)
        self._resolve(pending, with_first_token(result, first_token_at(output)))

    def _resolve(self, pending: PendingRequest, result: GenerationResult) -> None:
        if not pending.future.set_running_or_notify_cancel():
            return  # cancelled meanwhile
        self.counters.record_request(result.completion_tokens)
        pending.future.set_result(result)

    def status(self) -> dict[str, Any]:
        report = self._report(in_flight=len(self._pending))
        return {"engine": "continuous", **report, "kv_cache_tokens": self.kv_cache_tokens}


def first_token_at(output) -> float | None:
    """When the manager produced the request's first token (time.perf_counter())."""
    return output.timestamps[0] if output.timestamps else None
