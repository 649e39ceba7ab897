"""One error shape for every route: `{"error": {"type", "message", "fields"}, "request_id"}`."""

from __future__ import annotations

import logging
from contextvars import ContextVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serve_app.protocol import ErrorDetail, ErrorResponse, FieldProblem

logger = logging.getLogger("ray.serve")

ERROR_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "service_unavailable",
    504: "timeout",
}


# The id of the HTTP request being served, set by serve_app.middleware; carried in error bodies.
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


class Overloaded(Exception):
    """This replica holds as much unfinished work as it may: the client should retry later."""

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StoreUnavailable(Exception):
    """The task store cannot answer now (its replica dead or restarting, the disk full, the
    SQLite file locked): 503 + Retry-After, never a 500."""

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class FieldError(Exception):
    """A request field that passed the schema but breaks a configured limit → 422."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def error_response(
    status_code: int,
    message: str,
    fields: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(
        error=ErrorDetail(
            type=ERROR_TYPES.get(status_code, "error"), message=message, fields=fields or []
        ),
        request_id=current_request_id.get(),
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code, headers=headers)


def describe_validation_problem(error: dict) -> FieldProblem:
    location = ".".join(str(part) for part in error.get("loc", ()))
    if error.get("type") == "json_invalid":
        return FieldProblem(field="body", problem=f"malformed JSON: {error.get('msg')}")
    return FieldProblem(field=location or "body", problem=error.get("msg", "invalid"))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, error: RequestValidationError):
        fields = [describe_validation_problem(e) for e in error.errors()]
        summary = "; ".join(f"{f.field}: {f.problem}" for f in fields)
        return error_response(422, f"invalid request: {summary}", fields)

    @app.exception_handler(FieldError)
    async def on_field_error(request: Request, error: FieldError):
        problem = FieldProblem(field=error.field, problem=error.problem)
        return error_response(422, f"invalid request: {error}", [problem])

    @app.exception_handler(Overloaded)
    async def on_overload(request: Request, error: Overloaded):
        return error_response(503, str(error), headers={"Retry-After": str(error.retry_after_s)})

    @app.exception_handler(StoreUnavailable)
    async def on_store_outage(request: Request, error: StoreUnavailable):
        logger.warning(
            "task store unavailable on %s %s: %s", request.method, request.url.path, error
        )
        return error_response(503, str(error), headers={"Retry-After": str(error.retry_after_s)})

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, error: StarletteHTTPException):
        return error_response(error.status_code, str(error.detail), headers=error.headers)

    @app.exception_handler(Exception)
    async def on_unexpected_error(request: Request, error: Exception):
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error: {type(error).__name__}")
