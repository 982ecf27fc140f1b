"""Health figures of one book of one pair: command, error and divergence counts and a latency histogram.

Fixed log-spaced buckets keep recording O(1) and allocation-free; a percentile is reported as the upper
bound of its bucket (at most ~40% above the true value, plenty to compare with a 50 ms threshold).
"""
from __future__ import annotations

from bisect import bisect_left

# Upper bounds in microseconds; the last bucket catches everything slower.
BUCKET_BOUNDS_US = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1_000, 1_500, 2_000,
                    3_000, 5_000, 7_000, 10_000, 15_000, 20_000, 30_000, 50_000, 70_000, 100_000, 150_000,
                    200_000, 300_000, 500_000, 1_000_000, float("inf"))


class BookHealth:
    """Counters and latency histogram of one book since `reset`."""

    __slots__ = ("commands", "errors", "divergences", "slow", "_buckets")

    def __init__(self) -> None:
        self.commands = 0
        self.errors = 0
        self.divergences = 0
        self.slow = 0
        self._buckets = [0] * len(BUCKET_BOUNDS_US)

    def record(self, latency_ns: int) -> None:
        self.commands += 1
        self._buckets[bisect_left(BUCKET_BOUNDS_US, latency_ns / 1000)] += 1

    def percentile_us(self, fraction: float) -> float | None:
        total = sum(self._buckets)
        if not total:
            return None
        rank = fraction * total
        seen = 0
        for bound, count in zip(BUCKET_BOUNDS_US, self._buckets, strict=True):
            seen += count
            if seen >= rank:
                return bound if bound != float("inf") else BUCKET_BOUNDS_US[-2]
        return BUCKET_BOUNDS_US[-2]

    def figures(self) -> dict:
        return {"commands": self.commands, "errors": self.errors, "divergences": self.divergences,
                "slow": self.slow, "latency_p50_us": self.percentile_us(0.50),
                "latency_p95_us": self.percentile_us(0.95), "latency_p99_us": self.percentile_us(0.99)}
