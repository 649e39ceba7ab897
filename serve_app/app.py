"""The application builder: Serve config `args` → validated Settings → the bound graph.

serve run serve_config.cpu.yaml      # or: serve deploy serve_config.yaml
"""

from __future__ import annotations

from typing import Any

import ray
from ray.serve import Application
from ray.serve.config import HTTPOptions

from deployments.chatglm import ChatGLMDeployment
from deployments.engine.config import BatchingConfig, EngineConfig
from deployments.engine.modes import resolve_engine
from deployments.replica_options import MODEL_REPLICA_RUNTIME_ENV
from deployments.script_processor import ScriptProcessor
from serve_app.config import Settings
from serve_app.ingress import Ingress
from serve_app.model_registry import ModelEntry, deployment_name
from serve_app.security import refuse_unauthenticated_exposure
from serve_app.store.target import task_store_for_ingress


def build_app(args: dict[str, Any] | None = None) -> Application:
    """The bound graph; InsecureExposure when Serve listens beyond loopback with no keys."""
    settings = Settings(**(args or {}))
    refuse_unauthenticated_exposure(settings, serve_http_host())
    chats = {
        entry.id: bind_model(entry, shorthand=not settings.models)
        for entry in settings.model_entries()
    }
    processor = ScriptProcessor.bind()
    # SQLite: the one TaskStore deployment; PostgreSQL: each ingress replica's own pool
    store = task_store_for_ingress(settings)
    return Ingress.bind(chats, processor, store, settings)


def bind_model(entry: ModelEntry, shorthand: bool) -> Application:
    """The model's own ChatGLM deployment: `ChatGLM` for the one-model shorthand, else
    `ChatGLM-<id>` (own replicas, GPUs and autoscaling; a redeploy that drops the entry drains
    and removes just that deployment)."""
    options: dict[str, Any] = {
        "user_config": entry.model_dump(include=set(BatchingConfig.model_fields)),
        "max_ongoing_requests": chat_max_ongoing_requests(entry),
    }
    if not shorthand:
        options["name"] = deployment_name(entry.id)
    if entry.num_gpus is not None:
        options["ray_actor_options"] = {
            "num_cpus": 1,
            "num_gpus": entry.num_gpus,
            "runtime_env": MODEL_REPLICA_RUNTIME_ENV,
        }
    return ChatGLMDeployment.options(**options).bind(entry.chatglm_config())


def chat_max_ongoing_requests(config: EngineConfig) -> int:
    """Static engine: room for one batch running and the next one filling. vLLM: as many as it
    runs at once again, waiting in its own queue (it schedules them as slots free). The Serve
    config may set more."""
    mode = resolve_engine(config.engine, config.device, config.constrained_decoding)
    if mode == "vllm":
        return 2 * config.vllm_max_num_seqs
    return max(32, 2 * config.max_batch_size)


def serve_http_host() -> str:
    """The address Serve's HTTP proxies listen on (`http_options.host` of the Serve config).

    `serve run`/`serve deploy` build the app on the cluster with Serve already started from the
    config's http_options, so its controller knows them. With no Serve running yet,
    `serve.run(build_app(...))` starts it with Serve's defaults. Serve offers no public call for
    its HTTP options, hence the controller client (Ray 2.x, `ray.serve.context`).
    """
    if ray.is_initialized():
        from ray.serve.context import _get_global_client

        client = _get_global_client(raise_if_no_controller_running=False)
        if client is not None:
            return client.http_config.host
    return HTTPOptions().host
