"""The application builder: Serve config `args` → validated Settings → the bound graph.

serve run serve_config.cpu.yaml      # or: serve deploy serve_config.yaml
"""

from __future__ import annotations

from typing import Any

import ray
from ray.serve import Application
from ray.serve.config import HTTPOptions

from deployments.chatglm import ChatGLMDeployment
from deployments.engine.modes import resolve_engine
from deployments.script_processor import ScriptProcessor
from serve_app.config import Settings
from serve_app.ingress import Ingress
from serve_app.security import refuse_unauthenticated_exposure
from serve_app.store.target import task_store_for_ingress


def build_app(args: dict[str, Any] | None = None) -> Application:
    """The bound graph; InsecureExposure when Serve listens beyond loopback with no keys."""
    settings = Settings(**(args or {}))
    refuse_unauthenticated_exposure(settings, serve_http_host())
    chat = ChatGLMDeployment.options(
        user_config=settings.batching_user_config(),
        max_ongoing_requests=chat_max_ongoing_requests(settings),
    ).bind(settings.chatglm_config())
    processor = ScriptProcessor.bind()
    # SQLite: the one TaskStore deployment; PostgreSQL: each ingress replica's own pool
    store = task_store_for_ingress(settings)
    return Ingress.bind(chat, processor, store, settings)


def chat_max_ongoing_requests(settings: Settings) -> int:
    """Static engine: room for one batch running and the next one filling. vLLM: as many as it
    runs at once again, waiting in its own queue (it schedules them as slots free). The Serve
    config may set more."""
    mode = resolve_engine(settings.engine, settings.device, settings.constrained_decoding)
    if mode == "vllm":
        return 2 * settings.vllm_max_num_seqs
    return max(32, 2 * settings.max_batch_size)


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
