"""GET /: the playground page (serve_app/static/), a plain HTML + CSS + JS-module client of the
public API with no build step and nothing fetched from elsewhere. Open to everyone like /docs:
the page holds no data; every call it makes carries the key its user enters."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
STATIC_PATH = "/static"
# Only this origin's files and API: no inline script or style, no third party, no framing.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["playground"])
static_files = StaticFiles(directory=STATIC_DIR)


@router.get("/", include_in_schema=False)
async def playground() -> FileResponse:
    """The playground page."""
    return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)
