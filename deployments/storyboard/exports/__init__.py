"""A finished storyboard in the forms other tools read: subtitles, a shot list, a timeline, a
document. Pure functions of the script (no web framework here); serve_app/routes/exports.py
serves them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from deployments.storyboard.exports.document import to_markdown
from deployments.storyboard.exports.names import ascii_file_stem, unicode_file_stem
from deployments.storyboard.exports.shotlist import to_shot_list_csv
from deployments.storyboard.exports.subtitles import MAX_LINE_CHARS, to_srt, to_webvtt
from deployments.storyboard.exports.timeline import (
    DEFAULT_FPS,
    FrameRate,
    to_edl,
    to_fcpxml,
    to_otio_json,
)
from deployments.storyboard.models import VideoScript

__all__ = [
    "DEFAULT_FPS",
    "FORMATS",
    "MAX_LINE_CHARS",
    "ExportFormat",
    "ExportKind",
    "FrameRate",
    "ascii_file_stem",
    "export_script",
    "unicode_file_stem",
]


class ExportFormat(StrEnum):
    SRT = "srt"
    VTT = "vtt"
    CSV = "csv"
    OTIO = "otio"
    FCPXML = "fcpxml"
    EDL = "edl"
    MD = "md"


@dataclass(frozen=True)
class ExportKind:
    media_type: str
    extension: str
    write: Callable[[VideoScript, int], str]


FORMATS: dict[ExportFormat, ExportKind] = {
    ExportFormat.SRT: ExportKind("application/x-subrip", "srt", lambda s, _: to_srt(s)),
    ExportFormat.VTT: ExportKind("text/vtt", "vtt", lambda s, _: to_webvtt(s)),
    ExportFormat.CSV: ExportKind("text/csv", "csv", lambda s, _: to_shot_list_csv(s)),
    ExportFormat.OTIO: ExportKind("application/json", "otio", to_otio_json),
    ExportFormat.FCPXML: ExportKind("application/xml", "fcpxml", to_fcpxml),
    ExportFormat.EDL: ExportKind("text/plain", "edl", to_edl),
    ExportFormat.MD: ExportKind("text/markdown", "md", lambda s, _: to_markdown(s)),
}


def export_script(script: VideoScript, export_format: ExportFormat, fps: int = DEFAULT_FPS):
    """The export as UTF-8 bytes, with its kind (media type, file extension). `fps` is the
    frame rate of the timeline formats (otio, fcpxml, edl); the others keep milliseconds."""
    kind = FORMATS[export_format]
    return kind.write(script, fps).encode("utf-8"), kind
