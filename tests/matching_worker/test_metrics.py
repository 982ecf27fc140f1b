"""The worker's bulk histogram observation and its recent-quantile gauge, against prometheus_client's own."""
import math

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from matching_worker.metrics import LATENCY_BUCKETS, RecentQuantile, observe_all

latencies = st.lists(st.floats(min_value=0, max_value=30, allow_nan=False), max_size=200)


def histogram() -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    return registry, Histogram("latency_seconds", "test", buckets=LATENCY_BUCKETS, registry=registry)


@given(latencies)
def test_observing_all_at_once_exports_what_observing_one_by_one_does(values):
    one_by_one, one_metric = histogram()
    at_once, all_metric = histogram()
    for value in values:
        one_metric.observe(value)
    observe_all(all_metric, values)

    def exported(registry) -> dict[str, float]:
        return {sample.name + str(sorted(sample.labels.items())): sample.value
                for family in text_string_to_metric_families(generate_latest(registry).decode())
                for sample in family.samples if not sample.name.endswith("_created")}

    ours, theirs = exported(at_once), exported(one_by_one)
    assert ours.keys() == theirs.keys()
    for name, value in theirs.items():      # the sum may differ in its last bits: added in another order
        assert math.isclose(ours[name], value, rel_tol=1e-12, abs_tol=1e-12), name


def test_the_recent_quantile_covers_the_last_window_only():
    _, metric = histogram()
    recent = RecentQuantile(metric, window=60)
    observe_all(metric, [0.5] * 100)                       # long ago
    assert recent.value(0.95, now=0) > 0.25
    observe_all(metric, [0.002] * 100)                     # within the last minute
    assert recent.value(0.95, now=61) <= 0.0025
    assert recent.value(0.95, now=130) == 0.0              # nothing since


def test_the_recent_quantile_interpolates_within_a_bucket_as_prometheus_does():
    _, metric = histogram()
    recent = RecentQuantile(metric, window=60)
    recent.value(0.95, now=0)
    observe_all(metric, [0.007] * 100)                     # all in (0.005, 0.01]
    # histogram_quantile(0.95): 0.005 + (0.01 - 0.005) * 95 / 100
    assert abs(recent.value(0.95, now=10) - 0.00975) < 1e-9
