"""The HTTP contract: every request and response model, with validation and /docs examples.

Models here are data only; behaviour lives in the ingress, the pipeline and the deployments.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_SCENES = 20


class Camera(StrEnum):
    """The shot vocabulary downstream video tools understand."""

    WIDE_SHOT = "wide shot"
    MEDIUM_SHOT = "medium shot"
    CLOSE_UP = "close up"
    EXTREME_CLOSE_UP = "extreme close up"
    AERIAL_VIEW = "aerial view"
    TRACKING_SHOT = "tracking shot"
    PANNING_SHOT = "panning shot"
    LOW_ANGLE = "low angle"
    HIGH_ANGLE = "high angle"
    POINT_OF_VIEW = "point of view"
    TIME_LAPSE = "time lapse"


class Scene(BaseModel):
    scene_number: int = Field(ge=1, le=MAX_SCENES)
    description: str = Field(min_length=1, description="What the viewer sees.")
    duration: float = Field(gt=0, le=60, description="Seconds.")
    camera: Camera
    action: str = Field(min_length=1, description="What moves or happens in the shot.")
    narration: str = Field(description="Voice-over line, in the script's language.")
    visual_prompt: str = Field(min_length=1, description="English prompt for text-to-video.")


class VideoScript(BaseModel):
    """A storyboard: scenes numbered 1..n whose durations add up to `total_duration`."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "title": "森林探险",
                "language": "zh",
                "total_duration": 12.0,
                "scenes": [
                    {
                        "scene_number": 1,
                        "description": "清晨的森林入口，薄雾笼罩着高大的树木",
                        "duration": 6.0,
                        "camera": "wide shot",
                        "action": "探险者背着背包走进森林",
                        "narration": "每一次探险，都从迈出第一步开始。",
                        "visual_prompt": "misty forest entrance at dawn, hiker with backpack, "
                        "cinematic wide shot, soft golden light",
                    },
                    {
                        "scene_number": 2,
                        "description": "探险者在溪流边发现一只小鹿",
                        "duration": 6.0,
                        "camera": "close up",
                        "action": "小鹿抬头，与探险者对视",
                        "narration": "森林深处，总有意想不到的相遇。",
                        "visual_prompt": "young deer by a forest stream looking at camera, "
                        "close up, shallow depth of field",
                    },
                ],
            }
        }
    )

    title: str = Field(min_length=1, max_length=200)
    language: Literal["zh", "en"]
    total_duration: float = Field(gt=0)
    scenes: list[Scene] = Field(min_length=1, max_length=MAX_SCENES)

    @model_validator(mode="after")
    def _scenes_are_consistent(self) -> VideoScript:
        numbers = [scene.scene_number for scene in self.scenes]
        if numbers != list(range(1, len(self.scenes) + 1)):
            raise ValueError(f"scene_number must run 1..{len(self.scenes)}, got {numbers}")
        total = sum(scene.duration for scene in self.scenes)
        if abs(total - self.total_duration) > 0.01:
            raise ValueError(
                f"total_duration {self.total_duration} != sum of scene durations {total}"
            )
        return self


class ScriptRequest(BaseModel):
    """What a client asks for; also the input of the script processor and the fallback."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "prompt": "制作一段关于森林探险的短视频",
                "language": "auto",
                "style": "cinematic",
                "duration_s": 30,
                "num_scenes": 5,
            }
        },
    )

    prompt: str = Field(
        min_length=1, max_length=2000, description="What the video is about, 1–2000 characters."
    )
    language: Literal["zh", "en", "auto"] = Field(
        "auto", description="Script language; auto detects it from the prompt."
    )
    style: str | None = Field(
        None, min_length=1, max_length=50, description="e.g. cinematic, documentary, vlog."
    )
    duration_s: int | None = Field(None, ge=5, le=300, description="Target total length.")
    num_scenes: int | None = Field(None, ge=1, le=MAX_SCENES, description="Scene count.")
    system_prompt: str | None = Field(
        None,
        min_length=1,
        max_length=2000,
        description="Custom persona for the model (the output format rules always apply).",
    )

    @field_validator("prompt")
    @classmethod
    def _prompt_has_text(cls, prompt: str) -> str:
        stripped = prompt.strip()
        if not stripped:
            raise ValueError("prompt must contain non-whitespace text")
        return stripped


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


ScriptSource = Literal["llm", "llm_repaired", "fallback"]


class TaskTimings(BaseModel):
    queued_ms: float | None = Field(None, description="Accepted → a worker started it.")
    generation_ms: float | None = Field(None, description="Time in the model (0 for fallback).")
    total_ms: float | None = Field(None, description="Accepted → completed.")


class TaskResponse(BaseModel):
    task_id: str
    status: TaskStatus
    progress: int = Field(ge=0, le=100)
    prompt: str
    request: ScriptRequest
    result: VideoScript | None = None
    source: ScriptSource | None = None
    fallback_reason: str | None = Field(None, description="Why the fallback wrote the script.")
    error: str | None = None
    attempts: int = Field(0, description="Workers that have picked the task up.")
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    timings: TaskTimings = Field(default_factory=TaskTimings)


class TaskList(BaseModel):
    items: list[TaskResponse]
    total: int
    skip: int
    limit: int


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


class ScriptCounters(BaseModel):
    llm: int = 0
    llm_repaired: int = 0
    fallback: int = 0
    parse_failures: int = 0


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


class ModelStatus(BaseModel):
    engine: Literal["static", "continuous"] = Field(
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
    batching: BatchingStatus
    counters: ModelCounters
    prefix_cache: PrefixCacheStats | None = Field(None, description="null for other engines.")
    kv_cache_tokens: int | None = Field(
        None, description="Continuous engine: its paged KV cache; null for the static engine."
    )
    scripts: ScriptCounters
    cache: CacheStats | None = Field(None, description="null when caching is off.")


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
