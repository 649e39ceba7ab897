"""/v1 errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with OpenAI's
status codes: an invalid parameter is a 400 naming it (where /api answers 422 in the service's
own shape), a wrong key 401, an unknown model 404, overload 429/503 with Retry-After."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serve_app.openai.protocol import OpenAIErrorBody, OpenAIErrorResponse

logger = logging.getLogger("ray.serve")

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable",
    504: "timeout",
}
RESPONSE_FORMAT_TYPES = ("text", "json_object", "json_schema")
HTTP_ERROR_CODES = {401: "invalid_api_key", 404: "not_found", 405: "method_not_allowed"}


class OpenAIError(Exception):
    def __init__(
        self,
        status_code: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        retry_after_s: int | None = None,
    ):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.param = param
        self.code = code
        self.retry_after_s = retry_after_s

    def body(self) -> OpenAIErrorResponse:
        return OpenAIErrorResponse(
            error=OpenAIErrorBody(
                message=self.message,
                type=ERROR_TYPES.get(self.status_code, "invalid_request_error"),
                param=self.param,
                code=self.code,
            )
        )

    def response(self) -> JSONResponse:
        headers = {"Retry-After": str(self.retry_after_s)} if self.retry_after_s else None
        return JSONResponse(
            self.body().model_dump(mode="json"), status_code=self.status_code, headers=headers
        )


def param_of(location: tuple) -> str | None:
    """OpenAI's name for a parameter at a pydantic error location: `temperature`,
    `messages.0.content`, `response_format.json_schema.name`; None for the body as a whole."""
    parts = [str(part) for part in location if part != "body"]
    # Pydantic names the union member it tried (`str`, `list[TextPart]`, a tag): not a param.
    parts = [p for p in parts if not p.startswith(("list[", "function-")) and p != "str"]
    if parts[:1] == ["response_format"] and len(parts) > 1 and parts[1] in RESPONSE_FORMAT_TYPES:
        del parts[1]  # the tag of the format's union (`json_schema`), not a parameter
    return ".".join(parts) or None


def from_validation_error(error: RequestValidationError) -> OpenAIError:
    problems = error.errors()
    first = problems[0] if problems else {}
    if first.get("type") == "json_invalid":
        return OpenAIError(400, f"malformed JSON: {first.get('msg')}", None, "invalid_json")
    param = param_of(tuple(first.get("loc", ())))
    if first.get("type") == "extra_forbidden":
        message = f"Unrecognized request argument supplied: {param}"
        return OpenAIError(400, message, param, "unrecognized_argument")
    summary = "; ".join(
        f"{param_of(tuple(p.get('loc', ()))) or 'body'}: {p.get('msg')}" for p in problems
    )
    code = "unsupported_value" if first.get("type") == "unsupported_value" else "invalid_value"
    return OpenAIError(400, summary, param, code)


def install_openai_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OpenAIError)
    async def on_openai_error(request: Request, error: OpenAIError):
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, error: RequestValidationError):
        return from_validation_error(error).response()

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, error: StarletteHTTPException):
        shaped = OpenAIError(
            error.status_code, str(error.detail), None, HTTP_ERROR_CODES.get(error.status_code)
        )
        response = shaped.response()
        response.headers.update(error.headers or {})
        return response

    @app.exception_handler(Exception)
    async def on_unexpected_error(request: Request, error: Exception):
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return OpenAIError(500, f"internal error: {type(error).__name__}").response()
