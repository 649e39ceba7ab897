"""The application builder: Serve config `args` → validated Settings → the bound graph.

serve run serve_config.cpu.yaml      # or: serve deploy serve_config.yaml
"""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from deployments.chatglm import ChatGLMDeployment
from deployments.script_processor import ScriptProcessor
from serve_app.config import Settings
from serve_app.ingress import Ingress
from serve_app.task_store import TaskStoreDeployment


def build_app(args: dict[str, Any] | None = None) -> Application:
    settings = Settings(**(args or {}))
    chat = ChatGLMDeployment.options(
        user_config=settings.batching_user_config(),
        # Room for one batch running and the next one filling; the Serve config may set more.
        max_ongoing_requests=max(32, 2 * settings.max_batch_size),
    ).bind(settings.chatglm_config())
    processor = ScriptProcessor.bind()
    store = TaskStoreDeployment.bind(str(settings.task_db_path.resolve()))
    return Ingress.bind(chat, processor, store, settings)
