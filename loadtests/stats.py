"""The one percentile helper the load tests and benchmark scripts share."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(
    values: Iterable[float], fraction: float, ndigits: int | None = None
) -> float | None:
    """The `fraction` (0..1) quantile of `values`; None when there are none.

    Linear interpolation between the two nearest ranks (position `fraction * (n - 1)` in the
    sorted values): the same as `statistics.quantiles(values, n=100, method="inclusive")[k - 1]`
    for fraction k/100, `statistics.median` at 0.5 and numpy's default. Rounded to `ndigits`
    when it is given.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be within 0..1, got {fraction}")
    ordered = sorted(values)
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return value if ndigits is None else round(value, ndigits)
