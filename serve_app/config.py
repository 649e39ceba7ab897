"""Every knob of the service in one typed place.

Values come from the Serve config's `args` (see `serve_config.yaml`); an environment variable
`VSS_<FIELD>` overrides the config, so one config file serves many machines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

Precision = Literal["auto", "fp32", "fp16", "bf16", "int8", "nf4"]
Device = Literal["auto", "cpu", "cuda"]
SYNC_WAIT_MARGIN_S = 5.0  # accepting, preparing and storing a task around the LLM deadline
# The storyboard instructions, rules and example around a request (≈700 tokens), with room.
PROMPT_TEMPLATE_TOKENS = 1024


class BatchingConfig(BaseModel):
    """Live knobs of dynamic batching: the ChatGLM deployment's `user_config`."""

    model_config = {"extra": "forbid"}

    max_batch_size: int = Field(8, ge=1, le=256, description="Largest batch @serve.batch forms.")
    batch_wait_timeout_s: float = Field(
        0.05, ge=0.0, le=5.0, description="How long a batch waits to fill before it runs."
    )


class Settings(BaseSettings, BatchingConfig):
    """Service settings; environment (`VSS_...`) beats config args beats defaults."""

    model_config = SettingsConfigDict(env_prefix="VSS_", extra="forbid", frozen=True)

    # Model and engine
    model_path: str = Field(
        "models/chatglm3-6b",
        description="Local Hugging Face checkpoint directory. Missing weights → fallback only.",
    )
    auto_download: bool = Field(
        False,
        description="When no weights are at model_path, download hub_repo_id@hub_revision there "
        "at replica start (needs network; the replica serves nothing until it is done).",
    )
    hub_repo_id: str = Field(
        "THUDM/chatglm3-6b", min_length=3, description="Hugging Face repo auto_download fetches."
    )
    hub_revision: str = Field(
        "main", min_length=1, description="Branch, tag or commit auto_download pins."
    )
    precision: Precision = Field(
        "auto",
        description="int8/nf4 quantize with bitsandbytes. auto = fp32 on CPU; on CUDA bf16/fp16 "
        "if the weights plus the KV cache of a full batch (kv_cache_tokens()) fit in free "
        "memory, else int8, else nf4.",
    )
    allow_downgrade: bool = Field(
        True,
        description="On CUDA out-of-memory while loading, free everything and retry at the next "
        "lower precision (fp32 → half → int8 → nf4); /api/model/status reports what happened.",
    )
    device: Device = Field("auto", description="auto = cuda when available, else cpu.")
    torch_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="CPU threads for torch in the model replica; 0 = torch default.",
    )
    prefix_cache_entries: int = Field(
        8,
        ge=0,
        le=256,
        description="Prompt prefixes whose KV cache the static engine keeps (least recently used "
        "go): a request starting with one prefills only the rest. 0 = off.",
    )
    prefix_cache_min_tokens: int = Field(
        64,
        ge=1,
        le=8192,
        description="Shortest shared prompt prefix (in tokens) worth a prefix-cache entry.",
    )
    engine: Literal["auto", "static", "continuous"] = Field(
        "auto",
        description="How the model replica batches. static: @serve.batch forms a batch and one "
        "generate() call runs it. continuous: transformers' continuous batching, each request "
        "joins and leaves the running batch token by token (no constrained decoding; one "
        "greedy-or-sampling mode from temperature). auto: the one measured faster on the device "
        "— static on CPU; static on CUDA too until a GPU measurement says otherwise.",
    )

    # Sampling defaults for script generation
    max_new_tokens: int = Field(1024, ge=1, le=8192, description="Generation budget per script.")
    temperature: float = Field(
        0.7, ge=0.0, le=2.0, description="0 = greedy decoding (deterministic)."
    )
    top_p: float = Field(0.9, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    bench_ignore_eos: bool = Field(
        False,
        description="Benchmarks only: generate max_new_tokens for every script, EOS or not, so "
        "every request does the same work.",
    )

    system_prompt: str | None = Field(
        None,
        min_length=1,
        max_length=2000,
        description="Deployment-wide persona for the model; a request's own system_prompt wins.",
    )
    constrained_decoding: bool = Field(
        True,
        description="Constrain generation to the VideoScript JSON schema (xgrammar), so replies "
        "are valid JSON by construction; off = free text, repaired by the parser.",
    )
    model_recheck_s: float = Field(
        1.0,
        ge=0.0,
        le=600.0,
        description="After the model reports it is not loaded, each ingress replica writes "
        "fallbacks without asking it for this long (0 = ask every time).",
    )
    self_repair: bool = Field(
        True, description="On an invalid LLM reply, ask once more with the problems shown."
    )

    # Script cache (deterministic requests only: temperature 0)
    cache_enabled: bool = Field(
        True, description="Serve identical temperature-0 requests from an in-memory cache."
    )
    cache_max_entries: int = Field(
        1024, ge=1, le=1_000_000, description="Scripts the cache holds; least recently used go."
    )
    cache_ttl_s: float = Field(
        3600.0, gt=0.0, le=30 * 86400.0, description="Seconds a cached script stays valid."
    )

    # Inputs and tasks
    max_prompt_chars: int = Field(
        2000, ge=1, le=2000, description="Longest accepted prompt, in characters."
    )
    task_db_path: Path = Field(Path("data/tasks.db"), description="SQLite file of the task store.")
    sync_wait_timeout_s: float = Field(
        120.0, gt=0.0, le=3600.0, description="How long `?wait=true` waits before answering 202."
    )
    task_lease_s: float = Field(
        60.0,
        ge=5.0,
        le=3600.0,
        description="A running task whose worker has not renewed its lease for this long is "
        "taken over by another ingress replica.",
    )
    task_max_attempts: int = Field(
        3, ge=1, le=20, description="Workers that may die on one task before it is marked failed."
    )
    idle_unload_after_s: float = Field(
        0.0,
        ge=0.0,
        le=604800.0,
        description="Unload the model after this long without requests (0 = never); the next "
        "request loads it again.",
    )
    wedged_after_s: float = Field(
        600.0,
        ge=10.0,
        le=86400.0,
        description="check_health fails when one generate() call has run this long.",
    )

    # Load, deadlines and limits
    max_unfinished_tasks: int = Field(
        64,
        ge=1,
        le=100000,
        description="Accepted but unfinished tasks one ingress replica runs at once; beyond it "
        "new tasks get 503 with Retry-After (accepted ones are never dropped).",
    )
    overload_retry_after_s: int = Field(
        5, ge=1, le=3600, description="Retry-After (seconds) sent with an overload 503."
    )
    generation_timeout_s: float = Field(
        90.0,
        gt=0.0,
        le=3600.0,
        description="Deadline of the LLM path of one script (all attempts); on expiry the "
        "fallback writes it, with a fallback_reason starting `timeout`.",
    )
    sync_deadline_response: Literal["fallback", "504"] = Field(
        "fallback",
        description="What `?wait=true` answers when the generation deadline expired: the "
        "task completed by the fallback (200), or 504 (the task still completes).",
    )
    max_body_bytes: int = Field(
        65536, ge=1024, le=10_485_760, description="Largest request body; larger → 413."
    )
    max_prompt_tokens: int = Field(
        1536,
        ge=1,
        le=8192,
        description="Longest accepted prompt in (estimated) tokens: one per CJK character, "
        "one per 4 other characters.",
    )

    # Access control
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Keys accepted as `Authorization: Bearer <key>` on /api routes "
        "(comma-separated in the environment); none = no authentication.",
    )
    api_key_file: Path | None = Field(
        None, description="A file with one more API key per line (blank lines and # ignored)."
    )
    admin_api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Keys for /api/model/load and /api/model/unload (also valid elsewhere).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins CORS allows (comma-separated in the environment); none = CORS off.",
    )

    @field_validator("api_keys", "admin_api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return env_settings, init_settings

    @model_validator(mode="after")
    def _sync_wait_outlasts_the_generation_deadline(self) -> Settings:
        # Otherwise `?wait=true` gives up (202) before the deadline's fallback can answer it.
        if self.sync_wait_timeout_s <= self.generation_timeout_s + SYNC_WAIT_MARGIN_S:
            raise ValueError(
                f"sync_wait_timeout_s ({self.sync_wait_timeout_s:g}) must exceed "
                f"generation_timeout_s ({self.generation_timeout_s:g}) by more than "
                f"{SYNC_WAIT_MARGIN_S:g} s"
            )
        return self

    @model_validator(mode="after")
    def _continuous_engine_cannot_constrain_decoding(self) -> Settings:
        if self.engine == "continuous" and self.constrained_decoding:
            raise ValueError(
                "engine 'continuous' cannot do constrained_decoding (transformers' continuous "
                "batching runs no per-request logits processors): set constrained_decoding to "
                "false or use engine 'static' or 'auto'"
            )
        return self

    def kv_cache_tokens(self) -> int:
        """KV cache a full batch can need: per request the template, the longest accepted
        prompt and twice the script budget (a repair turn carries the failed reply back)."""
        per_request = PROMPT_TEMPLATE_TOKENS + self.max_prompt_tokens + 2 * self.max_new_tokens
        return self.max_batch_size * per_request

    def batching_user_config(self) -> dict[str, Any]:
        """The live knobs the ChatGLM deployment takes through `reconfigure`."""
        return {name: getattr(self, name) for name in BatchingConfig.model_fields}
