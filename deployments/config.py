"""What the ChatGLM deployment is configured with: its engine's config plus how it gets weights
and when it lets them go. Ray-free, so the service's Settings can inherit it (each knob is
defined once) and hand the deployment only this part (`Settings.chatglm_config()`)."""

from __future__ import annotations

from pydantic import Field

from deployments.engine.config import EngineConfig


class ChatGLMConfig(EngineConfig):
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
    idle_unload_after_s: float = Field(
        0.0,
        ge=0.0,
        le=604800.0,
        description="Unload the model after this long without requests (0 = never); the next "
        "request loads it again.",
    )
