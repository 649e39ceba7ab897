"""Every knob of the service in one typed place.

Values come from the Serve config's `args` (see `serve_config.yaml`); an environment variable
`VSS_<FIELD>` overrides the config, so one config file serves many machines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from deployments.config import ChatGLMConfig
from deployments.engine.config import BatchingConfig
from deployments.storyboard.constants import (
    MAX_MODEL_ID_CHARS,
    MAX_PROMPT_CHARS,
    MAX_SYSTEM_PROMPT_CHARS,
    MODEL_ID_PATTERN,
)
from serve_app.model_registry import ModelEntry, deployment_name

SYNC_WAIT_MARGIN_S = 5.0  # accepting, preparing and storing a task around the LLM deadline


class Settings(BaseSettings, ChatGLMConfig):
    """Service settings; environment (`VSS_...`) beats config args beats defaults.

    The model side's knobs are inherited from ChatGLMConfig (deployments/config.py) and
    EngineConfig (deployments/engine/config.py), where they are defined.
    """

    model_config = SettingsConfigDict(env_prefix="VSS_", extra="forbid", frozen=True)

    # Script generation
    bench_ignore_eos: bool = Field(
        False,
        description="Benchmarks only: generate max_new_tokens for every script, EOS or not, so "
        "every request does the same work.",
    )

    system_prompt: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_SYSTEM_PROMPT_CHARS,
        description="Deployment-wide persona for the model; a request's own system_prompt wins.",
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
        MAX_PROMPT_CHARS,
        ge=1,
        le=MAX_PROMPT_CHARS,
        description="Longest accepted prompt, in characters.",
    )
    task_db_path: Path = Field(
        Path("data/tasks.db"),
        description="SQLite file of the task store, used when task_store_url is unset.",
    )
    task_store_url: str | None = Field(
        None,
        pattern=r"^(sqlite:///|postgresql://)",
        description="Task store database: sqlite:///path/tasks.db (one file, one writer) or "
        "postgresql://user@host:5432/dbname (each ingress replica keeps its own pool). The "
        "password goes in task_store_password or task_store_password_file, not here. Unset: "
        "the SQLite file task_db_path.",
    )
    task_store_password: SecretStr | None = Field(
        None,
        description="PostgreSQL password of task_store_url (VSS_TASK_STORE_PASSWORD, e.g. from "
        "a Kubernetes Secret); never logged.",
    )
    task_store_password_file: Path | None = Field(
        None,
        description="A file holding the PostgreSQL password (a mounted Secret), read when a "
        "replica opens its pool; wins over task_store_password.",
    )
    task_store_pool_size: int = Field(
        8,
        ge=1,
        le=200,
        description="PostgreSQL connections each ingress replica keeps (its store calls run at "
        "most this many at once).",
    )
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
    task_retention_s: float = Field(
        7 * 86400.0,
        ge=0.0,
        le=3650 * 86400.0,
        description="Finished tasks (and their Idempotency-Keys) are deleted this long after "
        "they finished (0 = keep forever).",
    )
    task_max_attempts: int = Field(
        3, ge=1, le=20, description="Workers that may die on one task before it is marked failed."
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
        5,
        ge=1,
        le=3600,
        description="Retry-After (seconds) sent with a 503: overload, or the task store down.",
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
    # Task events (GET /api/tasks/{id}/events)
    task_events_poll_s: float = Field(
        0.5,
        ge=0.05,
        le=10.0,
        description="How often an events stream reads its task from the store (the task may "
        "run on any ingress replica).",
    )
    task_events_ping_s: float = Field(
        15.0,
        ge=1.0,
        le=300.0,
        description="Seconds between heartbeat comments on an events stream, so proxies keep "
        "it open.",
    )
    task_progress_interval_s: float = Field(
        1.0,
        ge=0.1,
        le=60.0,
        description="Least time between two progress writes of one task while it generates "
        "(stage changes are written at once).",
    )
    # Webhooks (callback_url on task creation)
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts a callback_url may name (comma-separated in the environment): a "
        "name, *.domain, an IP or a CIDR network; * = any host with public addresses only. "
        "Empty = webhooks off.",
    )
    webhook_secret: SecretStr | None = Field(
        None,
        description="Standard Webhooks signing secret (whsec_<base64>, or base64); required "
        "when webhooks are on, unless webhook_secret_file is set.",
    )
    webhook_secret_file: Path | None = Field(
        None, description="A file holding the signing secret (read when a replica starts)."
    )
    webhook_timeout_s: float = Field(
        10.0, gt=0.0, le=120.0, description="Deadline of one webhook POST."
    )
    webhook_max_attempts: int = Field(
        5, ge=1, le=30, description="POSTs of one webhook before it is given up."
    )
    webhook_retry_window_s: float = Field(
        600.0,
        gt=0.0,
        le=86400.0,
        description="No webhook retry starts this long after the first attempt.",
    )
    webhook_backoff_s: float = Field(
        1.0,
        gt=0.0,
        le=600.0,
        description="Wait before the first retry; doubled each retry (with jitter).",
    )
    # OpenAI-compatible /v1
    served_model_name: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        pattern=r"^[A-Za-z0-9._:/-]+$",
        description="The model's id on /v1 (GET /v1/models, the `model` of a completion); "
        "none = the model_path folder's name (e.g. chatglm3-6b).",
    )
    # Several models (serve_app/model_registry.py)
    models: list[ModelEntry] = Field(
        default_factory=list,
        description="Served models, each its own ChatGLM-<id> deployment: {id, model_path or "
        "hub_repo_id@hub_revision, engine, precision, device, num_gpus, max_batch_size, ...}; "
        "a field an entry leaves out takes the top-level setting of that name. Empty = the "
        "one model of the top-level settings, id served_model_name (deployment ChatGLM). "
        "VSS_MODELS takes JSON.",
    )
    default_model: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_MODEL_ID_CHARS,
        pattern=MODEL_ID_PATTERN,
        description="Id of the model a request without `model` gets; none = the first of "
        "models (or the one model's).",
    )
    openai_max_ongoing_requests: int = Field(
        64,
        ge=1,
        le=100000,
        description="/v1 chat completions one ingress replica runs at once (streams included); "
        "beyond it a 429 with Retry-After (overload_retry_after_s).",
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
    allow_unauthenticated: bool = Field(
        False,
        description="Serve /api without keys even when Serve's HTTP proxy listens on a "
        "non-loopback address (otherwise the app refuses to start there without keys).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins CORS allows (comma-separated in the environment); none = CORS off.",
    )

    @field_validator(
        "api_keys", "admin_api_keys", "cors_origins", "webhook_allowed_hosts", mode="before"
    )
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

    @model_validator(mode="before")
    @classmethod
    def _entries_inherit_the_model_settings(cls, data: Any) -> Any:
        """Each `models:` entry starts from the top-level model fields (device, precision...)."""
        if isinstance(data, dict) and isinstance(data.get("models"), list):
            shared = {key: data[key] for key in ChatGLMConfig.model_fields if key in data}
            entries = [
                {**shared, **entry} if isinstance(entry, dict) else entry
                for entry in data["models"]
            ]
            data = {**data, "models": entries}
        return data

    @model_validator(mode="after")
    def _model_ids_are_unique(self) -> Settings:
        if self.models and self.served_model_name is not None:
            raise ValueError(
                "served_model_name names the one-model shorthand; with `models` each entry's "
                "id is its name"
            )
        ids = [entry.id for entry in self.model_entries()]
        names = [deployment_name(model_id) for model_id in ids]
        repeated = sorted({i for i, name in zip(ids, names, strict=True) if names.count(name) > 1})
        if repeated:
            raise ValueError(
                f"models: ids must be unique (also once / and : read as _): {', '.join(repeated)}"
            )
        if self.default_model is not None and self.default_model not in ids:
            raise ValueError(
                f"default_model {self.default_model!r} is none of the models: {', '.join(ids)}"
            )
        return self

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
    def _webhooks_are_signed(self) -> Settings:
        if self.webhook_allowed_hosts and not (self.webhook_secret or self.webhook_secret_file):
            raise ValueError(
                "webhook_allowed_hosts turns webhooks on: set webhook_secret or "
                "webhook_secret_file too (every webhook is signed)"
            )
        return self

    def model_entries(self) -> list[ModelEntry]:
        """The served models: `models`, or the top-level model as the one entry."""
        if self.models:
            return list(self.models)
        model_id = self.served_model_name or Path(self.model_path).name or "model"
        return [ModelEntry.model_validate({**self.chatglm_config().model_dump(), "id": model_id})]

    def default_model_id(self) -> str:
        return self.default_model or self.model_entries()[0].id

    def batching_user_config(self) -> dict[str, Any]:
        """The live knobs the ChatGLM deployment takes through `reconfigure`."""
        return self.model_dump(include=set(BatchingConfig.model_fields))

    def chatglm_config(self) -> ChatGLMConfig:
        """The ChatGLM deployment's part of the settings (it never sees the rest)."""
        return ChatGLMConfig.model_validate(
            self.model_dump(include=set(ChatGLMConfig.model_fields))
        )
