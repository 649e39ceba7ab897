"""Plumbing around every route: the request id, the body size limit, CORS from the settings.

The middlewares are added to the FastAPI app at import time, before the Ingress replica (and its
Settings) exists, so they look their settings up per request through `settings_of_request`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve_app.config import Settings
from serve_app.errors import current_request_id, error_response
from serve_app.protocol import FieldProblem
from serve_app.replica import ingress_replica

SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

SettingsSource = Callable[[], Settings]


def replica_settings() -> Settings:
    """The Settings of the ingress replica serving this request."""
    return ingress_replica().settings


class RequestContextMiddleware:
    """Carries the request id into error bodies and logs, and enforces `max_body_bytes`.

    Under Serve the proxy already takes the client's `X-Request-ID` (or makes one), tags every
    replica log line with it and returns it in the response header; this middleware refuses an
    id that is not sane (400) rather than echo it, and refuses large bodies (413) before any
    of them is parsed — by Content-Length at once, or while a chunked body streams in.
    """

    def __init__(self, app: ASGIApp, settings_of_request: SettingsSource = replica_settings):
        self.app = app
        self.settings_of_request = settings_of_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = headers.get("x-request-id")
        if request_id is not None and not SANE_REQUEST_ID.fullmatch(request_id):
            problem = FieldProblem(
                field="header.x-request-id",
                problem="must be 1–128 characters of A-Z a-z 0-9 . _ : -",
            )
            await error_response(400, "invalid X-Request-ID header", [problem])(
                scope, receive, send
            )
            return
        token = current_request_id.set(request_id or uuid.uuid4().hex)
        try:
            await self._within_body_limit(scope, receive, send, headers)
        finally:
            current_request_id.reset(token)

    async def _within_body_limit(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers
    ) -> None:
        limit = self.settings_of_request().max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await body_too_large(limit)(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                # FastAPI re-raises HTTPException from body reading → the 413 error handler.
                raise HTTPException(413, too_large_message(limit))
            return message

        await self.app(scope, receive_within_limit, send)


def too_large_message(limit: int) -> str:
    return f"request body larger than {limit} bytes (VSS_MAX_BODY_BYTES)"


def body_too_large(limit: int):
    problem = FieldProblem(field="body", problem=f"must be at most {limit} bytes")
    return error_response(413, too_large_message(limit), [problem])


class CORSFromSettingsMiddleware:
    """Starlette's CORS middleware with the replica's `cors_origins`; a pass-through when empty."""

    def __init__(self, app: ASGIApp, settings_of_request: SettingsSource = replica_settings):
        self.app = app
        self.settings_of_request = settings_of_request
        self._configured: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan runs before the replica's settings are reachable
            await self.app(scope, receive, send)
            return
        if self._configured is None:
            origins = self.settings_of_request().cors_origins
            self._configured = (
                CORSMiddleware(
                    self.app,
                    allow_origins=origins,
                    allow_methods=["GET", "POST", "DELETE"],
                    allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                )
                if origins
                else self.app
            )
        await self._configured(scope, receive, send)
