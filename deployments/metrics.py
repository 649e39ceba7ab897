"""Prometheus metrics of the model side, through Ray Serve's metrics (`ray.serve.metrics`).

Each replica records into its own instruments; Ray's metrics agent on every node exports them,
tagged with the deployment, replica and application, and Prometheus sums them across replicas.
Ray prefixes every name with `ray_` on export: `vss_generated_tokens_total` is scraped as
`ray_vss_generated_tokens_total`, a histogram `vss_batch_size` as `ray_vss_batch_size_bucket`,
`_sum` and `_count`. Names follow vLLM's and Prometheus' conventions: counters end in `_total`,
durations are `_seconds`.

The engine stays Ray-free: it reports per request (GenerationResult's token counts and the time
its first token was produced) and per batch (EngineCounters, the prefix cache's counters); the
deployment hands those to `ModelMetrics`, which turns them into metric updates.

`MetricSpec` is shared with `serve_app/metrics.py` (the HTTP and task side); each name is defined
once, in one of the two `SPECS` tuples.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from ray.serve import metrics

# Ray's exporter puts this before every application metric's name.
EXPORT_PREFIX = "ray_"
# Batch sizes: every power of two up to the largest `max_batch_size` allows.
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
# vLLM's buckets for time to first token and end-to-end latency (seconds).
FIRST_TOKEN_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0,
)  # fmt: skip
LATENCY_BUCKETS = (
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0,
)  # fmt: skip


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its name as recorded (Ray adds `ray_` on export), kind, help and labels."""

    name: str
    kind: Literal["counter", "gauge", "histogram"]
    description: str
    tag_keys: tuple[str, ...] = ()
    boundaries: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if (self.kind == "counter") != self.name.endswith("_total"):
            raise ValueError(f"{self.name}: counters, and only counters, end in _total")
        if (self.kind == "histogram") != bool(self.boundaries):
            raise ValueError(f"{self.name}: histograms, and only histograms, have boundaries")

    @property
    def exported(self) -> tuple[str, ...]:
        """The series names Prometheus scrapes for it."""
        name = EXPORT_PREFIX + self.name
        if self.kind == "histogram":
            return (f"{name}_bucket", f"{name}_sum", f"{name}_count")
        return (name,)

    def create(self) -> metrics.Counter | metrics.Gauge | metrics.Histogram:
        if self.kind == "counter":
            return metrics.Counter(self.name, self.description, tag_keys=self.tag_keys)
        if self.kind == "gauge":
            return metrics.Gauge(self.name, self.description, tag_keys=self.tag_keys)
        return metrics.Histogram(
            self.name, self.description, list(self.boundaries), tag_keys=self.tag_keys
        )


class Instruments:
    """The instruments of some specs, each created on first use: Serve tags a metric with its
    deployment and replica only when it is created inside the replica (not at import)."""

    def __init__(self, *specs: MetricSpec):
        self.specs = {spec.name: spec for spec in specs}
        self._made: dict[str, Any] = {}
        self._lock = threading.Lock()  # engine and event-loop threads may record at once

    def __getitem__(self, name: str):
        made = self._made.get(name)
        if made is None:
            with self._lock:
                made = self._made.get(name)
                if made is None:
                    made = self._made[name] = self.specs[name].create()
        return made


BATCH_SIZE = MetricSpec(
    "vss_batch_size",
    "histogram",
    "Requests per engine batch (static engine: one generate() call each).",
    boundaries=BATCH_SIZE_BUCKETS,
)
GENERATION_SECONDS = MetricSpec(
    "vss_generation_seconds",
    "histogram",
    "Seconds from a chat request reaching the model replica to its reply (queue, batching and "
    "generation).",
    boundaries=LATENCY_BUCKETS,
)
TIME_TO_FIRST_TOKEN = MetricSpec(
    "vss_time_to_first_token_seconds",
    "histogram",
    "Seconds from a chat request reaching the model replica to its first generated token.",
    boundaries=FIRST_TOKEN_BUCKETS,
)
GENERATED_TOKENS = MetricSpec(
    "vss_generated_tokens_total", "counter", "Tokens generated for replies that completed."
)
PROMPT_TOKENS = MetricSpec(
    "vss_prompt_tokens_total", "counter", "Prompt tokens of chat requests that completed."
)
PREFIX_CACHE_HITS = MetricSpec(
    "vss_prefix_cache_hits_total",
    "counter",
    "Requests whose prompt started with a prefix already in the engine's KV prefix cache.",
)

SPECS = (
    BATCH_SIZE,
    GENERATION_SECONDS,
    TIME_TO_FIRST_TOKEN,
    GENERATED_TOKENS,
    PROMPT_TOKENS,
    PREFIX_CACHE_HITS,
)


class ModelMetrics:
    """What one model replica records. `record_request` per finished chat request (on the
    event loop), `record_engine` after it: the batches and prefix-cache hits the engine counted
    since the last call (its counters are cumulative; a drop means they started over)."""

    def __init__(self) -> None:
        self.instruments = Instruments(*SPECS)
        self._batches_seen: dict[int, int] = {}
        self._prefix_hits_seen = 0

    def record_request(self, result: Any, arrived_at: float) -> None:
        """`result`: the request's GenerationResult; `arrived_at`: time.perf_counter() when the
        replica got the request (the engine stamps its first token on the same clock)."""
        now = time.perf_counter()
        self.instruments[GENERATION_SECONDS.name].observe(now - arrived_at)
        first_token_at = getattr(result, "first_token_at", None)
        if first_token_at is not None:
            self.instruments[TIME_TO_FIRST_TOKEN.name].observe(
                max(0.0, first_token_at - arrived_at)
            )
        if result.completion_tokens:
            self.instruments[GENERATED_TOKENS.name].inc(result.completion_tokens)
        if result.prompt_tokens:
            self.instruments[PROMPT_TOKENS.name].inc(result.prompt_tokens)

    def record_engine(self, batch_sizes: dict[int, int], prefix_hits: int | None) -> None:
        """`batch_sizes`: EngineCounters.batch_sizes (batches run, by size); `prefix_hits`: the
        prefix cache's hits, None for an engine without one."""
        for size, count in dict(batch_sizes).items():  # a copy: the engine thread adds to it
            seen = self._batches_seen.get(size, 0)
            new = count - seen if count >= seen else count
            for _ in range(new):
                self.instruments[BATCH_SIZE.name].observe(size)
            self._batches_seen[size] = count
        if prefix_hits is not None:
            seen = self._prefix_hits_seen
            new = prefix_hits - seen if prefix_hits >= seen else prefix_hits
            if new:
                self.instruments[PREFIX_CACHE_HITS.name].inc(new)
            self._prefix_hits_seen = prefix_hits
