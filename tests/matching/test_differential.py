"""Differential property tests: long random command streams, biased toward the hard cases, must give
identical events from the reference model, the legacy book and the adaptive book, with both books'
invariants (`_check`) holding after every command."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.adaptive_book import AdaptiveOrderBook
from matching.legacy_book import LegacyOrderBook
from tests.matching.reference_model import ReferenceBook

ACCOUNTS = st.integers(1, 3)                    # few accounts: self-trades happen often


def weighted(common, rare, rare_percent: int):
    """`common` most of the time, `rare` in about rare_percent% of draws (st.one_of would pick evenly)."""
    return st.integers(0, 99).flatmap(lambda roll: rare if roll < rare_percent else common)


PRICES = weighted(st.integers(98, 102), st.sampled_from([None, 0, -1]), 4)   # narrow band: books cross
QUANTITIES = weighted(st.integers(1, 8), st.sampled_from([0, -1]), 4)
# An id is drawn as an index into the ids used so far (resolved in `resolve_ids`): most places get a
# fresh id, some reuse one (duplicates); cancels and reduces hit live, filled, cancelled or unknown orders.
FRESH = -1
PLACE_IDS = weighted(st.just(FRESH), st.integers(0, 400), 8)
TARGET_IDS = st.integers(0, 400)


@st.composite
def place_commands(draw):
    order_type = draw(weighted(st.just("limit"), st.just("market"), 12))
    return ("place", draw(PLACE_IDS), draw(ACCOUNTS), draw(st.sampled_from(["buy", "sell"])),
            draw(QUANTITIES), draw(PRICES), order_type,
            draw(st.sampled_from(["gtc", "gtc", "ioc", "fok", "post_only"])),
            draw(st.sampled_from(["expire_taker", "expire_maker", "expire_both", "none"])))


COMMANDS = st.integers(0, 99).flatmap(
    lambda roll: place_commands() if roll < 65
    else st.tuples(st.just("cancel"), TARGET_IDS) if roll < 85
    else st.tuples(st.just("reduce"), TARGET_IDS, st.integers(-1, 8)))


def resolve_ids(commands):
    """Turns drawn id indexes into order ids: FRESH is a new id, any other number picks a used one."""
    used: list[int] = []
    resolved = []
    for verb, index, *rest in commands:
        if verb == "place" and (index == FRESH or not used):
            order_id = len(used) + 1
            used.append(order_id)
        else:
            order_id = used[index % len(used)] if used else 1
        resolved.append((verb, order_id, *rest))
    return resolved


def run(book, command):
    verb, *args = command
    return getattr(book, verb)(*args)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(COMMANDS, min_size=30, max_size=300))
def test_both_books_and_the_reference_model_emit_identical_events(commands):
    reference, legacy, adaptive = ReferenceBook(), LegacyOrderBook(), AdaptiveOrderBook()
    for command in resolve_ids(commands):
        expected = run(reference, command)
        assert run(legacy, command) == expected, command
        assert run(adaptive, command) == expected, command
        legacy._check()
        adaptive._check()
    assert legacy.depth(10) == adaptive.depth(10) == reference.depth(10)


@st.composite
def deep_book_streams(draw):
    """Deep books over a wide range with sweeping market orders and FOKs: exercises level creation,
    lazy heap cleanup and queue compaction in the adaptive book."""
    commands = []
    for order_id in range(1, draw(st.integers(50, 400))):
        side = draw(st.sampled_from(["buy", "sell"]))
        price = draw(st.integers(1, 500)) if side == "buy" else draw(st.integers(501, 1000))
        commands.append(("place", order_id, draw(ACCOUNTS), side, draw(st.integers(1, 5)), price))
    for order_id in range(1000, 1000 + draw(st.integers(0, 300))):
        verb = draw(st.sampled_from(["cancel", "cancel", "market", "fok", "reduce"]))
        target = draw(st.integers(1, len(commands)))
        if verb == "cancel":
            commands.append(("cancel", target))
        elif verb == "reduce":
            commands.append(("reduce", target, draw(st.integers(0, 3))))
        else:
            side = draw(st.sampled_from(["buy", "sell"]))
            price = draw(st.integers(1, 1000))
            order_type, tif = ("market", "gtc") if verb == "market" else ("limit", "fok")
            commands.append(("place", order_id, draw(ACCOUNTS), side, draw(st.integers(1, 60)), price, order_type,
                             tif, draw(st.sampled_from(["expire_taker", "expire_maker", "expire_both", "none"]))))
    return commands


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(deep_book_streams())
def test_books_agree_on_deep_books_with_sweeps(commands):
    legacy, adaptive = LegacyOrderBook(), AdaptiveOrderBook()
    for command in commands:
        assert run(adaptive, command) == run(legacy, command), command
    legacy._check()
    adaptive._check()
    assert legacy.snapshot() == adaptive.snapshot()


# Order ids as the worker sees them: mostly ascending, in consecutive runs or past gaps (database ids
# shared by many pairs), sometimes older or repeated (a replay), sometimes across a bitmap chunk's edge.
ID_STEPS = st.one_of(
    st.tuples(st.just("run"), st.integers(1, 70)),                 # the next n consecutive ids
    st.tuples(st.just("gap"), st.integers(2, 40_000)),             # jump ahead, past a chunk edge at times
    st.tuples(st.just("older"), st.integers(0, 80_000)),           # an id this far below the highest
)


def id_stream(steps) -> list[int]:
    ids, highest = [], 32_760                                       # start a few ids below a chunk edge
    for kind, amount in steps:
        if kind == "run":
            ids.extend(range(highest + 1, highest + 1 + amount))
            highest += amount
        elif kind == "gap":
            highest += amount
            ids.append(highest)
        else:
            ids.append(max(0, highest - amount))
    return ids


@settings(max_examples=300, deadline=None)
@given(st.lists(ID_STEPS, min_size=1, max_size=60))
def test_the_adaptive_book_remembers_order_ids_as_a_set_would(steps):
    """The adaptive book keeps the ids it saw as a run of consecutive ids plus bitmaps; whatever the
    pattern, a duplicate is rejected exactly when a set says it was seen, and a restored book remembers
    the same ids."""
    book, seen = AdaptiveOrderBook(), set()
    for order_id in id_stream(steps):
        events = book.place(order_id, 1, "buy", 0, 100)        # quantity 0: rejected, but the id is taken
        reason = "duplicate_order_id" if order_id in seen else "invalid_quantity"
        assert events == [("rejected", order_id, reason)], order_id
        seen.add(order_id)
        book._check_seen_ids()
    snapshot = book.snapshot()
    assert snapshot.seen_order_ids == seen
    restored = AdaptiveOrderBook.from_snapshot(snapshot)
    assert restored.snapshot().seen_order_ids == seen
    restored._check_seen_ids()
