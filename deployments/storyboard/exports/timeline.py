"""The storyboard as an editing timeline: OpenTimelineIO, and FCPXML (Final Cut Pro X) and a
CMX 3600 EDL through OpenTimelineIO's maintained adapters (otio-fcpx-xml-adapter,
otio-cmx3600-adapter).

One video track, one clip per scene, no gaps: each cut is rounded to the nearest frame at the
chosen rate. A clip's media is the file its scene is expected to be rendered to
(`scene-001.mp4`, ...), which an editor shows offline until it is relinked; the scene's
fields are in the clip's metadata under `video_script`.
"""

from __future__ import annotations

import re
import unicodedata
from enum import IntEnum

import opentimelineio as otio

from deployments.storyboard.exports.timing import (
    characters_of,
    frame_boundaries,
    scene_spans,
)
from deployments.storyboard.models import VideoScript


class FrameRate(IntEnum):
    """The rates every timeline format here round-trips: the EDL adapter's SMPTE timecode
    refuses others (12, 15, 100, 120), and the FCPXML adapter writes an empty frameDuration for
    48 and fractional NTSC rates (23.976, 29.97, 59.94) or mixes 29.97 with 30000/1001."""

    FPS_24 = 24
    FPS_25 = 25
    FPS_30 = 30
    FPS_50 = 50
    FPS_60 = 60


DEFAULT_FPS = FrameRate.FPS_25
METADATA_KEY = "video_script"
# CMX 3600 reel names are at most 8 characters; the adapter pads and cuts to this.
EDL_REEL_CHARS = 8
TRACK_NAME = "Storyboard"


def build_timeline(script: VideoScript, fps: int = DEFAULT_FPS) -> otio.schema.Timeline:
    timeline = otio.schema.Timeline(name=script.title)
    timeline.global_start_time = otio.opentime.RationalTime(0, fps)
    timeline.metadata[METADATA_KEY] = {
        "title": script.title,
        "language": script.language,
        "total_duration": script.total_duration,
        "fps": int(fps),
        **script_look(script),
    }
    track = otio.schema.Track(name=TRACK_NAME, kind=otio.schema.TrackKind.Video)
    cuts = frame_boundaries(script, fps)
    for span, first, last in zip(scene_spans(script), cuts[:-1], cuts[1:], strict=True):
        scene = span.scene
        length = otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, fps), otio.opentime.RationalTime(last - first, fps)
        )
        clip = otio.schema.Clip(
            name=f"Scene {scene.scene_number}",
            media_reference=otio.schema.ExternalReference(
                target_url=scene_media_name(scene.scene_number), available_range=length
            ),
            source_range=length,
        )
        clip.metadata[METADATA_KEY] = {
            **scene.model_dump(mode="json"),
            "characters": characters_of(scene),
            "start": span.start,
            "end": span.end,
        }
        clip.metadata["cmx_3600"] = {"reel": edl_reel_name(scene.scene_number)}
        track.append(clip)
    timeline.tracks.append(track)
    return timeline


def script_look(script: VideoScript) -> dict:
    """Aspect ratio, visual style and cast, where the script carries them."""
    look = {
        field: getattr(script, field)
        for field in ("aspect_ratio", "visual_style")
        if getattr(script, field, None) is not None
    }
    cast = getattr(script, "characters", None)
    if cast:
        look["characters"] = [character.model_dump(mode="json") for character in cast]
    return look


def scene_media_name(scene_number: int) -> str:
    return f"scene-{scene_number:03d}.mp4"


def edl_reel_name(scene_number: int) -> str:
    """SC001..SC020: within CMX 3600's 8 characters, letters and digits only."""
    return f"SC{scene_number:03d}"


def to_otio_json(script: VideoScript, fps: int = DEFAULT_FPS) -> str:
    return otio.adapters.write_to_string(build_timeline(script, fps), "otio_json")


def to_fcpxml(script: VideoScript, fps: int = DEFAULT_FPS) -> str:
    return otio.adapters.write_to_string(build_timeline(script, fps), "fcpx_xml")


def to_edl(script: VideoScript, fps: int = DEFAULT_FPS) -> str:
    """CMX 3600 is ASCII: the title line carries the title's ASCII letters only."""
    timeline = build_timeline(script, fps)
    timeline.name = ascii_title(script.title)
    return otio.adapters.write_to_string(
        timeline, "cmx_3600", rate=fps, reelname_len=EDL_REEL_CHARS
    )


def ascii_title(title: str, fallback: str = "Storyboard") -> str:
    plain = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    plain = re.sub(r"[^ -~]+", " ", plain)
    return " ".join(plain.split()) or fallback
