"""/v1: OpenAI-compatible models and chat completions (logic in serve_app/openai/serving.py).

A FastAPI app of its own, mounted at /v1 by the ingress, so that its errors take OpenAI's shape
and status codes (400 for a bad parameter) while /api keeps the service's (422); it has its own
docs at /v1/docs. The ingress's middleware (request id, body limit, CORS) wraps it too.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.responses import StreamingResponse

from serve_app.openai.errors import install_openai_error_handlers
from serve_app.openai.protocol import (
    ChatCompletion,
    ChatCompletionRequest,
    ModelCard,
    ModelList,
    OpenAIErrorResponse,
)
from serve_app.openai.serving import OpenAIServing
from serve_app.replica import ingress_replica
from serve_app.security import require_api_key

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

v1 = FastAPI(
    title="video-script-serve /v1 (OpenAI-compatible)",
    summary="The deployment's model behind OpenAI's chat-completions API.",
    version="0.1.0",
    dependencies=[Depends(require_api_key)],
)
install_openai_error_handlers(v1)


async def openai_serving() -> OpenAIServing:
    return ingress_replica().openai


Serving = Annotated[OpenAIServing, Depends(openai_serving)]


def errors(*codes: int) -> dict[int | str, dict]:
    return {code: {"model": OpenAIErrorResponse} for code in (400, 401, *codes)}


@v1.get("/models", response_model=ModelList, responses=errors())
async def list_models(serving: Serving) -> ModelList:
    return serving.models()


@v1.get("/models/{model_id:path}", response_model=ModelCard, responses=errors(404))
async def retrieve_model(model_id: str, serving: Serving) -> ModelCard:
    return serving.model(model_id)


@v1.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        **errors(404, 429, 503),
        200: {
            "description": "A chat.completion; with `stream: true`, text/event-stream of "
            "chat.completion.chunk events ended by `data: [DONE]`.",
            "content": {"text/event-stream": {}},
        },
    },
)
async def chat_completions(body: ChatCompletionRequest, serving: Serving):
    if body.stream:
        events = await serving.stream(body)
        return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
    return await serving.complete(body)
