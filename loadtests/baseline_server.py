"""The alternative a user would pick: one FastAPI process calling `generate()` per request.

    VSS_MODEL_PATH=models/bench python -m uvicorn loadtests.baseline_server:app --port 8100

Same engine code, prompt builder and settings (`VSS_*`) as the service, but no Ray, no batching
and no prefix cache (the original platform had neither): each request is one `generate()` call
over its whole prompt, one at a time (the engine's lock serialises them, as one model on one
device must).
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from deployments.engine import GenerationRequest, StaticBatchingEngine, results_or_raise
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.prompts import build_messages
from serve_app.config import Settings

settings = Settings()
engine = StaticBatchingEngine(
    model_path=settings.model_path,
    precision=settings.precision,
    device=settings.device,
    torch_threads=settings.torch_threads,
    prefix_cache_entries=0,
)


@asynccontextmanager
async def load_engine(_app: FastAPI):
    engine.start()
    yield


app = FastAPI(title="baseline: generate() per request", lifespan=load_engine)


@app.get("/health")
def health() -> dict:
    return {"loaded": engine.loaded}


@app.post("/generate")
def generate(request: ScriptRequest) -> dict:
    """Sync route: FastAPI runs it in its thread pool, so the event loop keeps accepting."""
    generation = GenerationRequest(
        messages=build_messages(request),
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p,
        ignore_eos=settings.bench_ignore_eos,
    )
    result = results_or_raise(engine.generate([generation]))[0]
    return {"text": result.text, "completion_tokens": result.completion_tokens}
