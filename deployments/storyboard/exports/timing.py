"""Where each scene sits on the storyboard's clock: the one definition every export uses."""

from __future__ import annotations

import math
from dataclasses import dataclass

from deployments.storyboard.models import Scene, VideoScript


@dataclass(frozen=True)
class SceneSpan:
    """A scene and its place on the clock, in seconds from the storyboard's start."""

    scene: Scene
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def scene_spans(script: VideoScript) -> list[SceneSpan]:
    """Each scene starts where the ones before it end (their cumulative durations)."""
    spans, elapsed = [], []
    for scene in script.scenes:
        start = math.fsum(elapsed)
        elapsed.append(scene.duration)
        spans.append(SceneSpan(scene, start, math.fsum(elapsed)))
    return spans


def to_milliseconds(seconds: float) -> int:
    return round(seconds * 1000)


def frame_boundaries(script: VideoScript, fps: float) -> list[int]:
    """Frame numbers where scenes meet, first 0, last the end: each cut rounded to the nearest
    frame, so clips butt against each other (no gap, no overlap) and no cut drifts more than
    half a frame from the script's, however many scenes there are."""
    spans = scene_spans(script)
    return [0, *(round(span.end * fps) for span in spans)]


def characters_of(scene: Scene) -> list[str]:
    """The names of the characters in a scene (none before scenes carried them)."""
    return list(getattr(scene, "characters", None) or [])
