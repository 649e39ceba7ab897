"""The shot list: one CSV row per scene, for spreadsheets and production planning.

UTF-8 with a byte order mark: Excel reads a CSV without one in the system's legacy code page,
which garbles Chinese (and any accent); with it, Excel, LibreOffice, Google Sheets, Numbers and
Python's `utf-8-sig` all read the text right. Rows end in CRLF (RFC 4180); times are seconds.
"""

from __future__ import annotations

import csv
import io

from deployments.storyboard.exports.timing import characters_of, scene_spans
from deployments.storyboard.models import VideoScript

SHOT_LIST_COLUMNS = (
    "scene_number",
    "start",
    "end",
    "duration",
    "camera",
    "description",
    "action",
    "narration",
    "visual_prompt",
    "characters",
)
CHARACTER_SEPARATOR = "; "
BYTE_ORDER_MARK = "\ufeff"


def to_shot_list_csv(script: VideoScript) -> str:
    """The shot list as text, byte order mark first (encode it as UTF-8)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(SHOT_LIST_COLUMNS)
    for span in scene_spans(script):
        scene = span.scene
        writer.writerow(
            [
                scene.scene_number,
                seconds_text(span.start),
                seconds_text(span.end),
                seconds_text(scene.duration),
                scene.camera.value,
                scene.description,
                scene.action,
                scene.narration,
                scene.visual_prompt,
                CHARACTER_SEPARATOR.join(characters_of(scene)),
            ]
        )
    return BYTE_ORDER_MARK + out.getvalue()


def seconds_text(seconds: float) -> str:
    """Seconds to the millisecond, without trailing zeros: 4.5, 12, 0.333."""
    return f"{round(seconds, 3):.3f}".rstrip("0").rstrip(".")
