"""The HTTP contract: every request and response model, with validation and /docs examples.

Models here are data only; behaviour lives in the ingress, the pipeline and the deployments.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    field_validator,
)
from pydantic_core import PydanticCustomError

from deployments.storyboard.constants import SCRIPT_SOURCES, ScriptSource
from deployments.storyboard.language import visible_request_text
from deployments.storyboard.models import Camera, Scene, ScriptRequest, VideoScript
from deployments.storyboard.quality import QualityReport

# The storyboard's own models are part of this contract, as they are.
__all__ = ["Camera", "QualityReport", "Scene", "ScriptRequest", "VideoScript"]


# What wrote a revision of a script: a path of the pipeline, or the client's own edit.
RevisionSource = Literal["llm", "llm_repaired", "fallback", "edit"]


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class TaskStage(StrEnum):
    """Where a task is: the stages of the pipeline, then how it ended."""

    QUEUED = "queued"
    GENERATING = "generating"
    PARSING = "parsing"
    REPAIRING = "repairing"
    WRITING_FALLBACK = "writing_fallback"
    COMPLETED = "completed"
    FAILED = "failed"


MAX_CALLBACK_URL_CHARS = 2048


class TaskCreate(ScriptRequest):
    """A script request, plus where to POST the finished task (webhooks)."""

    callback_url: AnyHttpUrl | None = Field(
        None,
        description="http(s) URL the finished (or failed) task is POSTed to, signed per the "
        "Standard Webhooks spec; its host must be in `webhook_allowed_hosts` (webhooks are off "
        "without it: then a 422).",
        examples=["https://hooks.example.com/storyboards"],
    )

    @field_validator("callback_url", mode="before")
    @classmethod
    def _callback_url_is_bounded(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value) > MAX_CALLBACK_URL_CHARS:
            raise PydanticCustomError(
                "url_too_long", "at most {n} characters", {"n": MAX_CALLBACK_URL_CHARS}
            )
        return value


class WebhookDelivery(BaseModel):
    """How the task's webhook went: recorded after every attempt."""

    url: str
    state: Literal["pending", "delivering", "delivered", "failed"] = Field(
        description="pending until the task finishes; delivered on a 2xx; failed when the "
        "attempts or the retry window ran out, on a 4xx other than 408/429, or when the URL "
        "was refused at delivery (its host resolving to an address not allowed)."
    )
    attempts: int = Field(0, description="POSTs made so far.")
    last_status: int | None = Field(None, description="HTTP status of the last attempt.")
    last_error: str | None = Field(None, description="Why the last attempt failed, if it did.")


class TaskTimings(BaseModel):
    queued_ms: float | None = Field(None, description="Accepted → a worker started it.")
    generation_ms: float | None = Field(None, description="Time in the model (0 for fallback).")
    total_ms: float | None = Field(None, description="Accepted → completed.")


class TaskResponse(BaseModel):
    task_id: str
    status: TaskStatus
    progress: int = Field(ge=0, le=100)
    prompt: str
    request: ScriptRequest | None = Field(
        description="null only for a stored row that no longer validates (`error` says why)."
    )
    result: VideoScript | None = None
    source: ScriptSource | None = None
    fallback_reason: str | None = Field(None, description="Why the fallback wrote the script.")
    fallback_template: str | None = Field(
        None, description="The fallback's genre template (food, travel, product, ...), if it wrote."
    )
    notes: list[str] = Field(
        default_factory=list,
        description="What the service read into the request, e.g. a duration from the prompt.",
    )
    error: str | None = None
    attempts: int = Field(0, description="Workers that have picked the task up.")
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    expires_at: datetime | None = Field(
        None,
        description="When a finished task is deleted (`task_retention_s` after it finished); "
        "null while unfinished, or when tasks are kept forever.",
    )
    timings: TaskTimings = Field(default_factory=TaskTimings)
    stage: TaskStage = Field(
        TaskStage.QUEUED,
        description="queued, generating, parsing, repairing, writing_fallback, completed or "
        "failed (GET /api/tasks/{id}/events streams it).",
    )
    generated_tokens: int = Field(
        0, description="Tokens the model has generated for this task so far (all attempts)."
    )
    webhook: WebhookDelivery | None = Field(None, description="null without a callback_url.")
    revision: int | None = Field(
        None,
        description="Which revision of the script `result` is: 1 as written, +1 per edit "
        "(null while unfinished).",
    )
    revision_source: RevisionSource | None = Field(
        None, description="What wrote this revision: llm, llm_repaired, fallback or edit."
    )
    revision_note: str | None = Field(None, description="What this revision changed.")
    quality: QualityReport | None = Field(
        None,
        description="How `result` meets `request`: duration, scene count, narration per scene, "
        "distinct scenes, language, English visual prompts, character coverage (computed on "
        "read; null without a result).",
    )


class TaskList(BaseModel):
    items: list[TaskResponse]
    total: int
    skip: int
    limit: int


class RevisionInfo(BaseModel):
    revision: int
    source: RevisionSource
    note: str | None = None
    created_at: datetime


class RevisionList(BaseModel):
    task_id: str
    items: list[RevisionInfo] = Field(description="Oldest first; revision 1 is as written.")


MAX_INSTRUCTION_CHARS = 500


def visible_instruction(text: str | None) -> str | None:
    """An instruction as the model will read it: bidi controls removed, something visible."""
    if text is None:
        return None
    try:
        return visible_request_text(text)
    except ValueError as error:
        raise PydanticCustomError("no_visible_text", str(error)) from None


class SceneInstruction(BaseModel):
    """What to change when the model rewrites a scene (optional)."""

    model_config = ConfigDict(extra="forbid")

    instruction: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_INSTRUCTION_CHARS,
        description="e.g. 'make it night, 8 seconds'; without it, a different version of the "
        "scene, same duration.",
    )

    _visible = field_validator("instruction")(visible_instruction)


class SceneInsert(SceneInstruction):
    """A new scene: given whole, or written by the model (else the fallback)."""

    position: int | None = Field(
        None, ge=1, description="Where it goes, 1..n+1 (default: at the end)."
    )
    scene: dict[str, Any] | None = Field(
        None,
        description="The scene's fields (all but scene_number); omitted: the model writes it.",
    )


class RefineRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instruction: str = Field(
        min_length=1,
        max_length=MAX_INSTRUCTION_CHARS,
        description="How to rewrite the whole script, e.g. 'more humour, end on a question'.",
    )

    _visible = field_validator("instruction")(visible_instruction)


class EditKind(StrEnum):
    """The edits that run as jobs: the model (or the fallback) writes them."""

    REGENERATE = "regenerate"
    INSERT = "insert"
    REFINE = "refine"


class EditResponse(BaseModel):
    """An edit job (regenerate, a written insert, refine): accepted with 202, run like a task
    (a lease, adopted when its worker dies); completed = its revision is stored."""

    edit_id: str
    task_id: str
    kind: EditKind
    status: TaskStatus = Field(
        description="running until its revision is stored (completed) "
        "or it failed (`error`, `error_status`)."
    )
    scene_number: int | None = Field(None, description="regenerate: the scene rewritten.")
    position: int | None = Field(None, description="insert: where the scene goes (null: the end).")
    instruction: str | None = None
    if_match: int | None = Field(None, description="The revision it must start from (If-Match).")
    revision: int | None = Field(
        None, description="The revision it stored (GET /api/tasks/{id}?revision=k)."
    )
    revision_source: RevisionSource | None = Field(None, description="llm or fallback.")
    revision_note: str | None = None
    error: str | None = None
    error_status: int | None = Field(
        None,
        description="The HTTP status `?wait=true` answers this failure with, as the edit would "
        "have been refused synchronously: 404 (the scene gone), 409 (If-Match, a concurrent "
        "rewrite), 422, 503 (refine: no model, or no valid rewrite).",
    )
    attempts: int = Field(description="Workers that have picked it up (more after adoption).")
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "edit_id": "5f0c2e7a9b1d4c3e8f6a2b1c0d9e8f7a",
                    "task_id": "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e",
                    "kind": "regenerate",
                    "status": "running",
                    "scene_number": 3,
                    "instruction": "at night, in the rain",
                    "attempts": 1,
                    "created_at": "2026-12-01T10:00:00Z",
                }
            ]
        }
    )


class EditList(BaseModel):
    task_id: str
    items: list[EditResponse] = Field(description="Newest first (at most 100).")


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="degraded = fallback scripts only.")
    llm_loaded: bool
    device: str | None
    model_path: str
    reason: str | None = Field(None, description="Why the LLM is not serving, when it is not.")


class GpuMemory(BaseModel):
    name: str
    allocated_mb: float
    reserved_mb: float
    peak_allocated_mb: float
    total_mb: float


class BatchingStatus(BaseModel):
    max_batch_size: int
    batch_wait_timeout_s: float


class ModelCounters(BaseModel):
    requests: int = 0
    batches: int = 0
    mean_batch_size: float = 0.0
    max_batch_size_seen: int = 0
    generated_tokens: int = 0
    failures: int = 0
    busy_s: float = Field(
        0.0,
        description="Seconds the engine was generating: in generate() (static), with a request "
        "in flight (continuous).",
    )
    batch_size_histogram: dict[str, int] = Field(
        default_factory=dict, description="Batches run, by batch size."
    )
    oom_batch_splits: int = Field(0, description="Batches split in halves after out-of-memory.")
    in_flight: int = Field(0, description="Continuous engine: requests queued or generating.")


class PrefixCacheStats(BaseModel):
    """The engine's prompt-prefix KV cache (deployments/engine/prefix_cache.py)."""

    entries: int
    max_entries: int
    hits: int = Field(description="Requests that started with a cached prefix.")
    misses: int
    reused_tokens: int = Field(description="Prompt tokens not prefilled thanks to hits.")
    prefilled_prefixes: int = Field(description="Prefixes computed and stored so far.")
    evictions: int = Field(0, description="Entries dropped to make room (least used first).")
    cached_tokens: int = Field(0, description="Tokens the entries hold, all together.")
    max_tokens: int = Field(0, description="Longest prefix one entry holds.")


# Finished tasks by the path that wrote their script, plus the replies that failed to parse.
ScriptCounters = create_model(
    "ScriptCounters",
    **{source: (int, 0) for source in SCRIPT_SOURCES},
    parse_failures=(int, 0),
)


class CacheStats(BaseModel):
    """The answering ingress replica's script cache (temperature-0 requests only)."""

    entries: int
    max_entries: int
    ttl_s: float
    hits: int
    misses: int
    hit_rate: float
    evictions: int
    expirations: int


class VLLMScheduler(BaseModel):
    """vLLM's own scheduler, as its stat logger last reported it (engine vllm)."""

    running_requests: int = 0
    waiting_requests: int = 0
    max_running_requests_seen: int = Field(0, description="Most requests running at once.")
    kv_cache_usage: float = Field(0.0, description="Share of the paged KV cache in use.")
    prefix_cache_queried_tokens: int = 0
    prefix_cache_hit_tokens: int = 0
    prefix_cache_hit_rate: float = 0.0
    unfinished_requests: int = Field(0, description="Requests vLLM still holds.")


class ModelReplicaStatus(BaseModel):
    """One model replica as it reports itself."""

    replica_id: str | None = Field(
        None, description="Serve's id of the replica; null in the service-wide summary."
    )
    engine: Literal["static", "continuous", "vllm"] = Field(
        "static", description="The engine serving (the `engine` setting, `auto` resolved)."
    )
    model_path: str
    loaded: bool
    reason: str | None = None
    precision: str | None = None
    requested_precision: str | None = None
    precision_downgrades: list[dict[str, str]] = Field(
        default_factory=list,
        description="Out-of-memory steps down at load: {from, to, error} each.",
    )
    layout: str | None = Field(None, description="native, or chatglm3-original (converted).")
    device: str | None = None
    load_time_s: float | None = None
    parameters: int | None = None
    gpu: GpuMemory | None = None
    host_rss_mb: float | None = None
    torch_threads: int | None = Field(
        None, description="CPU threads torch computes with in the replica (static, continuous)."
    )
    batching: BatchingStatus
    counters: ModelCounters
    prefix_cache: PrefixCacheStats | None = Field(None, description="null for other engines.")
    kv_cache_tokens: int | None = Field(
        None, description="Continuous engine: its paged KV cache; null for the static engine."
    )
    scheduler: VLLMScheduler | None = Field(None, description="vLLM engine; null for others.")


class ServedModel(BaseModel):
    """One model of the registry as /api/model/status lists it."""

    id: str = Field(description="The model's id (a task's or a /v1 completion's `model`).")
    deployment: str = Field(description="Its Serve deployment (ChatGLM, or ChatGLM-<id>).")
    default: bool = Field(description="Requests without `model` get this one.")
    loaded: bool = Field(description="Any of its replicas has the model loaded.")
    reason: str | None = Field(None, description="Why not loaded (or unreachable).")
    replicas: int = Field(0, description="Its replicas that answered.")


class ModelStatus(ModelReplicaStatus):
    """Every model replica together (serve_app/model_status.py): `loaded` when any replica is,
    `counters` and `prefix_cache` summed (their max_* the largest), `host_rss_mb` summed; the
    model and engine fields as the first loaded replica reports them; each replica's own report
    in `replicas`."""

    replicas: list[ModelReplicaStatus] = Field(
        default_factory=list, description="Each model replica that answered, by replica_id."
    )
    replicas_unreachable: int = Field(
        0, description="Model replicas that did not answer the status call (failed, stopping)."
    )
    scripts: ScriptCounters
    cache: CacheStats | None = Field(None, description="null when caching is off.")
    model: str | None = Field(None, description="Id of the model this status is of.")
    models: list[ServedModel] = Field(
        default_factory=list, description="Every served model with its state."
    )


class FieldProblem(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. body.prompt.")
    problem: str


class ErrorDetail(BaseModel):
    type: str = Field(description="Machine-readable kind, e.g. validation_error, not_found.")
    message: str
    fields: list[FieldProblem] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """The one error shape every route returns."""

    error: ErrorDetail
    request_id: str | None = None
