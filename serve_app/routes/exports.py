"""/api/tasks/{id}/export: a finished storyboard as subtitles, a shot list or a timeline."""

from __future__ import annotations

from fastapi import APIRouter

from serve_app.routes.common import API_KEY

router = APIRouter(prefix="/api/tasks", tags=["exports"], dependencies=API_KEY)
