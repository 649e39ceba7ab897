"""Several models in one app: the registry's entries (settings) and, in each ingress replica,
the handle of each model's own ChatGLM deployment by model id.

An entry is a ChatGLMConfig (deployments/config.py: path or hub repo@revision, engine,
precision, device, batching, sampling...) with an `id` and the GPUs each of its replicas takes;
the settings' top-level model fields are every entry's defaults (serve_app/config.py). Each
entry is its own Serve deployment, `ChatGLM-<id>`, so it has its own replicas, GPUs and
autoscaling (the Serve config's `deployments:` list names it). The one-model shorthand (no
`models:`) keeps the deployment name `ChatGLM`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field

from deployments.config import ChatGLMConfig
from deployments.storyboard.constants import MAX_MODEL_ID_CHARS, MODEL_ID_PATTERN

if TYPE_CHECKING:
    from ray.serve.handle import DeploymentHandle

    from serve_app.config import Settings

SHORTHAND_DEPLOYMENT = "ChatGLM"  # the decorator's name: serve_config.yaml's entry for it holds


class ModelEntry(ChatGLMConfig):
    """One served model of the `models:` list."""

    id: str = Field(
        min_length=1,
        max_length=MAX_MODEL_ID_CHARS,
        pattern=MODEL_ID_PATTERN,
        description="The model's id: the `model` of a task or of a /v1 completion.",
    )
    num_gpus: float | None = Field(
        None,
        ge=0.0,
        le=16.0,
        description="GPUs each replica of this model takes (Ray's num_gpus); none = the "
        "deployment's default (0), or what the Serve config's `deployments:` entry says.",
    )

    def chatglm_config(self) -> ChatGLMConfig:
        """What the model's deployment is handed (it never sees the id)."""
        return ChatGLMConfig.model_validate(
            self.model_dump(include=set(ChatGLMConfig.model_fields))
        )


def deployment_name(model_id: str) -> str:
    """The Serve deployment of a `models:` entry: ChatGLM-<id>, characters Serve's names do not
    take (/ and :) written as _."""
    return f"{SHORTHAND_DEPLOYMENT}-{re.sub(r'[^A-Za-z0-9._-]', '_', model_id)}"


class UnknownModel(LookupError):
    """A model id the deployment does not serve (never was, or was removed by a redeploy)."""

    def __init__(self, model_id: str, served: list[str]):
        self.model_id = model_id
        self.served = served
        super().__init__(
            f"model {model_id!r} is not served here; served: {', '.join(served) or 'none'}"
        )


class ModelRegistry:
    """One ingress replica's models: id → the model's settings and its deployment's handle."""

    def __init__(self, settings: Settings, handles: Mapping[str, DeploymentHandle]):
        self.entries = {entry.id: entry for entry in settings.model_entries()}
        self.handles = dict(handles)
        self.default_id = settings.default_model_id()

    @classmethod
    def of(cls, chat: Any, settings: Settings) -> ModelRegistry:
        """A registry from what a caller holds: a registry, {id: handle}, or the one model's
        handle (tests and tools that bind a single ChatGLM)."""
        if isinstance(chat, ModelRegistry):
            return chat
        if isinstance(chat, Mapping):
            return cls(settings, chat)
        return cls(settings, {settings.default_model_id(): chat})

    def ids(self) -> list[str]:
        return list(self.entries)

    def resolve(self, model_id: str | None) -> str:
        """The id a request means (none = the default); UnknownModel when not served."""
        if model_id is None:
            return self.default_id
        if model_id not in self.entries:
            raise UnknownModel(model_id, self.ids())
        return model_id

    def entry(self, model_id: str | None) -> ModelEntry:
        return self.entries[self.resolve(model_id)]

    def handle(self, model_id: str | None) -> DeploymentHandle:
        return self.handles[self.resolve(model_id)]
