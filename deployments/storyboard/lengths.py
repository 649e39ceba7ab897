"""How long a storyboard runs and how its scenes share that time: the one set of rules the
request's validation, the prompt hints, the model's prompt, the parser and the fallback follow.

A request can be met when its scenes can carry its length: every scene lasts MIN_SCENE_SECONDS
to MAX_SCENE_SECONDS. A field the request leaves open is chosen to fit the one it gives, so the
model is asked for, and both paths write, the same total.

Pure Python over storyboard.constants; nothing here knows a request model.
"""

from __future__ import annotations

import math

from deployments.storyboard.constants import (
    DEFAULT_DURATION_S,
    DEFAULT_SCENE_RANGE,
    MAX_DURATION_S,
    MAX_SCENE_SECONDS,
    MAX_SCENES,
    MIN_DURATION_S,
    MIN_SCENE_SECONDS,
    MIN_SCENES,
    SECONDS_PER_SCENE,
)

# Scene lengths are whole multiples of this: exact in binary floats, so durations add up to the
# total exactly, and fine enough for an editor.
DURATION_QUANTUM_S = 0.5


def scene_length_problem(duration_s: int, num_scenes: int) -> str | None:
    """Why `num_scenes` scenes cannot make `duration_s` seconds, or None when they can."""
    scenes = f"{num_scenes} scene{'' if num_scenes == 1 else 's'}"
    each = f"each scene lasts {MIN_SCENE_SECONDS}–{MAX_SCENE_SECONDS} s"
    if duration_s < num_scenes * MIN_SCENE_SECONDS:
        return (
            f"{duration_s} s is too short for {scenes} ({each}): ask for at most "
            f"{max_scenes_for(duration_s)} scenes or at least {num_scenes * MIN_SCENE_SECONDS} s"
        )
    if duration_s > num_scenes * MAX_SCENE_SECONDS:
        return (
            f"{duration_s} s is too long for {scenes} ({each}): ask for at least "
            f"{min_scenes_for(duration_s)} scenes or at most {num_scenes * MAX_SCENE_SECONDS} s"
        )
    return None


def min_scenes_for(duration_s: float) -> int:
    """The fewest scenes that can fill `duration_s` (never under MIN_SCENES)."""
    return max(MIN_SCENES, math.ceil(duration_s / MAX_SCENE_SECONDS))


def max_scenes_for(duration_s: float) -> int:
    """The most scenes that fit in `duration_s` (never over MAX_SCENES, never under 1)."""
    return max(MIN_SCENES, min(MAX_SCENES, math.floor(duration_s / MIN_SCENE_SECONDS)))


def scene_count_range(duration_s: int) -> tuple[int, int]:
    """Scene counts to ask the model for when a request leaves the count open: the default arc
    (DEFAULT_SCENE_RANGE) as far as it fits `duration_s`, else every count that fits."""
    low, high = min_scenes_for(duration_s), max_scenes_for(duration_s)
    default_low, default_high = DEFAULT_SCENE_RANGE
    if max(low, default_low) <= min(high, default_high):
        return max(low, default_low), min(high, default_high)
    return low, high


def default_scene_count(duration_s: int) -> int:
    """About one scene per SECONDS_PER_SCENE, within the scene count range of `duration_s`."""
    low, high = scene_count_range(duration_s)
    return max(low, min(high, round(duration_s / SECONDS_PER_SCENE)))


def default_duration(num_scenes: int | None) -> int:
    """DEFAULT_DURATION_S, moved as little as needed for `num_scenes` scenes to carry it."""
    if num_scenes is None:
        return DEFAULT_DURATION_S
    low = max(MIN_DURATION_S, num_scenes * MIN_SCENE_SECONDS)
    high = min(MAX_DURATION_S, num_scenes * MAX_SCENE_SECONDS)
    return max(low, min(high, DEFAULT_DURATION_S))


def planned_duration(duration_s: int | None, num_scenes: int | None) -> int:
    """The total a storyboard for these request fields runs: the request's, else the default
    that its scene count can carry."""
    return duration_s if duration_s is not None else default_duration(num_scenes)


def planned_scene_count(duration_s: int | None, num_scenes: int | None) -> int:
    """The scene count the fallback writes: the request's, else the default for the total."""
    if num_scenes is not None:
        return num_scenes
    return default_scene_count(planned_duration(duration_s, num_scenes))


def share_duration(total_s: int, weights: list[float]) -> list[float]:
    """Scene lengths proportional to `weights` that add up exactly to `total_s`, each within
    MIN_SCENE_SECONDS..MAX_SCENE_SECONDS, in steps of DURATION_QUANTUM_S.

    The fallback shares its total by beat weights, the parser by the model's own durations.
    ValueError when the scenes cannot carry the total (requests that cannot be met are refused
    before they get here; the parser turns it into a parse error).
    """
    if not weights or any(not w > 0 for w in weights):
        raise ValueError(f"weights must be positive, got {weights}")
    if (problem := scene_length_problem(total_s, len(weights))) is not None:
        raise ValueError(problem)
    low = math.ceil(MIN_SCENE_SECONDS / DURATION_QUANTUM_S)
    high = math.floor(MAX_SCENE_SECONDS / DURATION_QUANTUM_S)
    total_units = round(total_s / DURATION_QUANTUM_S)
    weight_sum = sum(weights)
    ideal = [w / weight_sum * total_units for w in weights]
    units = [low] * len(weights)
    for _ in range(total_units - sum(units)):
        open_scenes = [i for i in range(len(units)) if units[i] < high]
        neediest = max(open_scenes, key=lambda i: ideal[i] - units[i])
        units[neediest] += 1
    return [u * DURATION_QUANTUM_S for u in units]
