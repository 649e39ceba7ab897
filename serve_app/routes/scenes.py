"""/api/tasks/{id}/scenes, /refine and /revisions: editing a finished storyboard (issue 13)."""

from __future__ import annotations

from fastapi import APIRouter

from serve_app.routes.common import API_KEY

router = APIRouter(prefix="/api/tasks", tags=["scenes"], dependencies=API_KEY)
