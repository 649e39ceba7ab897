"""What every engine takes, returns and promises; the deployment only adapts Serve to this."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal


@dataclass(frozen=True)
class GenerationRequest:
    """One chat completion: messages in, text out.

    `stop`: strings that end the reply where they first appear (cut from the text, finish
    reason "stop"); checked per row, so requests with different stops share a batch. `seed`:
    with sampling, the random state the row's batch starts from (best effort, as OpenAI's: rows
    sampled in one batch share one generator, so the text also depends on the batch); ignored
    when greedy.
    """

    messages: list[dict[str, str]]
    max_new_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.9
    json_schema: dict[str, Any] | None = None
    ignore_eos: bool = False  # benchmarks: every request does exactly max_new_tokens of work
    stop: tuple[str, ...] = ()
    seed: int | None = None

    @property
    def sampling_key(self) -> tuple[float, float, bool, int | None]:
        """Requests with equal keys can share one `generate()` call: the batch samples with one
        temperature, top_p and generator (a seed matters only when sampling)."""
        seed = self.seed if self.temperature > 0 else None
        return (self.temperature, self.top_p, self.ignore_eos, seed)


@dataclass(frozen=True)
class GenerationResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"]
    # time.perf_counter() when the engine produced the row's first token (in this process);
    # the deployment measures time to first token from it. None when no token was generated.
    # A timing, not part of the reply: results compare equal without it.
    first_token_at: float | None = field(default=None, compare=False)


def with_first_token(outcome: RowOutcome, first_token_at: float | None) -> RowOutcome:
    """`outcome` stamped with its first token's time (results with tokens only)."""
    if isinstance(outcome, GenerationResult) and outcome.completion_tokens and first_token_at:
        return replace(outcome, first_token_at=first_token_at)
    return outcome


class RowFailed(RuntimeError):
    """One request of a batch failed on its own (out of memory even alone, a prompt that does not
    fit, an error its row alone raised); the batch's other requests are unaffected."""


class PromptTooLong(RowFailed, ValueError):
    """The prompt leaves no room to generate in the model's context (or the KV cache); a
    ValueError too, as the continuous engine's other refusals of a request are."""


class RequestCancelled(RowFailed):
    """The caller gave up while its request was generating; it stopped at its next token."""

    def __init__(self, completion_tokens: int):
        super().__init__(f"cancelled after {completion_tokens} generated tokens")
        self.completion_tokens = completion_tokens

    def __reduce__(self):
        return type(self), (self.completion_tokens,)


# What `generate` gives for each request: its result, or why that request alone failed.
RowOutcome = GenerationResult | RowFailed
# Asked at every generated token: True once the request's caller has gone.
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class TextDelta:
    """New text of one streamed request, final (never taken back); `completion_tokens`
    generated so far."""

    text: str
    completion_tokens: int


# Called on the engine's thread with each delta of its request, in order; must not block (the
# deployment hands it to its event loop with `call_soon_threadsafe`).
TokenSink = Callable[[TextDelta], None]


def never_cancelled() -> bool:
    return False


def results_or_raise(outcomes: list[RowOutcome]) -> list[GenerationResult]:
    """The results of a `generate` call whose caller wants all or nothing (benchmarks, tools):
    the first row failure is raised."""
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes


@dataclass
class EngineCounters:
    requests: int = 0
    batches: int = 0
    max_batch_size_seen: int = 0
    generated_tokens: int = 0
    failures: int = 0
    busy_s: float = 0.0
    batch_sizes: dict[int, int] = field(default_factory=dict)

    def record_batch(self, size: int, generated_tokens: int, seconds: float) -> None:
        self.requests += size
        self.busy_s += seconds
        self.batches += 1
        self.max_batch_size_seen = max(self.max_batch_size_seen, size)
        self.generated_tokens += generated_tokens
        self.batch_sizes[size] = self.batch_sizes.get(size, 0) + 1

    def record_request(self, generated_tokens: int) -> None:
        """Continuous batching finishes requests one at a time: no batches to count."""
        self.requests += 1
        self.generated_tokens += generated_tokens

    def as_dict(self) -> dict[str, Any]:
        mean = self.requests / self.batches if self.batches else 0.0
        return {
            "requests": self.requests,
            "batches": self.batches,
            "mean_batch_size": round(mean, 3),
            "max_batch_size_seen": self.max_batch_size_seen,
            "generated_tokens": self.generated_tokens,
            "failures": self.failures,
            "busy_s": round(self.busy_s, 3),
            "batch_size_histogram": {str(k): v for k, v in sorted(self.batch_sizes.items())},
        }


class ChatEngine(ABC):
    """Lifecycle (start, sleep/wakeup, check_health) plus the work (generate a batch).

    Streaming is part of `generate`: a request given a sink in `sinks` has its text handed to
    that sink as it is generated, one `TextDelta` per piece that became final (a token, or
    several where a character spans byte tokens; text that could still be the start of a stop
    string waits until it is not). The concatenation of a row's deltas equals the text of its
    `GenerationResult`, which `generate` still returns as the row's outcome (with the token
    counts and the finish reason). Sinks run on the engine's thread, between decoding steps:
    they must return at once. Streamed and unstreamed requests share batches. A row whose sink
    already received text is never generated again (e.g. after an out-of-memory split): it
    fails with RowFailed instead, so a client never sees text twice.
    `deployments/engine/streaming.py` (RowText) does the decoding, stop strings and sending
    for the engines here; an engine with its own detokenizer (vLLM's) calls the sinks itself.
    """

    @abstractmethod
    def start(self) -> None:
        """Load the model; raises ModelNotAvailable when it cannot."""

    @abstractmethod
    def sleep(self) -> None:
        """Free the model's memory; `wakeup` loads it again."""

    @abstractmethod
    def wakeup(self) -> None: ...

    @property
    @abstractmethod
    def loaded(self) -> bool: ...

    @abstractmethod
    def generate(
        self,
        requests: list[GenerationRequest],
        cancelled: Sequence[CancelCheck] | None = None,
        sinks: Sequence[TokenSink | None] | None = None,
    ) -> list[RowOutcome]:
        """Generate every request; outcomes in request order. A request that fails on its own
        gets a RowFailed in its place and the others their results; a request whose
        `cancelled` check turns true stops at its next token (RequestCancelled); a request
        with a sink streams its text to it (see the class docstring). Raises only when the
        engine cannot run at all (ModelNotAvailable)."""

    @abstractmethod
    def check_health(self) -> None:
        """Raise when the engine is wedged."""

    @abstractmethod
    def status(self) -> dict[str, Any]: ...
