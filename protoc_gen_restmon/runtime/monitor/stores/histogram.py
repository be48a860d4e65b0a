"""Duration histogram buckets for the per-minute rollups, and percentiles read back from them.

Bucket 0 holds durations below `BASE_MS`; bucket i (1 ≤ i < `BUCKETS` - 1) holds
[BASE_MS·RATIO^(i-1), BASE_MS·RATIO^i); the last bucket holds everything above. A percentile is
the geometric middle of the bucket it falls in, clamped to the observed min and max, so it is
within ±12% (half a bucket, RATIO = 1.25) of the true value between 0.1 ms and ~2 minutes.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence

BASE_MS = 0.1
RATIO = 1.25
BUCKETS = 64
_LOG_RATIO = math.log(RATIO)

COLUMNS = tuple(f"h{i:02d}" for i in range(BUCKETS))


def bucket_of(duration_ms: float) -> int:
    """The bucket index for a duration: `bucket_of(0.05) == 0`, `bucket_of(0.1) == 1`."""
    if duration_ms < BASE_MS:
        return 0
    index = int(math.log(duration_ms / BASE_MS) / _LOG_RATIO) + 1
    return min(index, BUCKETS - 1)


def percentile(counts: Sequence[int], q: float, low: float, high: float) -> float:
    """The q-th percentile (0 < q ≤ 100) of the durations counted in `counts`, whose
    observed range is [low, high]; 0.0 when nothing was counted."""
    total = sum(counts)
    if total == 0:
        return 0.0
    rank = math.ceil(total * q / 100)
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return min(max(_middle(index), low), high)
    return high


def percentiles(counts: Sequence[int], qs: Sequence[float], low: float, high: float) -> list[float]:
    """`percentile` for each of `qs`, with one cumulative sum (the time series needs three
    per bucket, for thousands of buckets)."""
    cumulative = list(itertools.accumulate(counts))
    total = cumulative[-1] if cumulative else 0
    if total == 0:
        return [0.0] * len(qs)
    indexes = (bisect.bisect_left(cumulative, math.ceil(total * q / 100)) for q in qs)
    return [min(max(_middle(index), low), high) for index in indexes]


def _middle(index: int) -> float:
    if index == 0:
        return BASE_MS / 2
    return BASE_MS * math.pow(RATIO, index - 0.5)
