"""The matching contract (shared/MATCHING_RULES.md), written once and run against both books."""
import pytest

A, B = 1, 2   # two accounts


def test_limit_order_that_does_not_cross_rests_with_its_level(book):
    assert book.place(1, A, "buy", 5, 100) == [("accepted", 1), ("rested", 1, 5), ("level", "buy", 100, 5)]


def test_orders_at_one_price_add_up_in_the_level(book):
    book.place(1, A, "sell", 5, 100)
    assert book.place(2, B, "sell", 3, 100)[-1] == ("level", "sell", 100, 8)


def test_trade_is_at_the_makers_price(book):
    book.place(1, A, "sell", 5, 100)
    assert book.place(2, B, "buy", 5, 105) == [
        ("accepted", 2), ("trade", 1, 2, 100, 5), ("done", 2), ("level", "sell", 100, 0)]


def test_best_price_is_served_first_then_arrival_order(book):
    book.place(1, A, "sell", 1, 101)
    book.place(2, A, "sell", 1, 100)
    book.place(3, A, "sell", 1, 100)
    events = book.place(4, B, "buy", 3, 101)
    assert [e[1] for e in events if e[0] == "trade"] == [2, 3, 1]
    assert events[-2:] == [("level", "sell", 100, 0), ("level", "sell", 101, 0)]


def test_bids_are_served_highest_first(book):
    book.place(1, A, "buy", 1, 99)
    book.place(2, A, "buy", 1, 100)
    events = book.place(3, B, "sell", 2, 99)
    assert [e[1] for e in events if e[0] == "trade"] == [2, 1]


def test_partial_fill_of_a_gtc_taker_rests_the_remainder(book):
    book.place(1, A, "sell", 2, 100)
    assert book.place(2, B, "buy", 5, 100) == [
        ("accepted", 2), ("trade", 1, 2, 100, 2), ("rested", 2, 3),
        ("level", "sell", 100, 0), ("level", "buy", 100, 3)]
    assert book.best_bid() == 100 and book.best_ask() is None


def test_partially_filled_maker_keeps_its_remainder(book):
    book.place(1, A, "sell", 10, 100)
    assert book.place(2, B, "buy", 4, 100)[-1] == ("level", "sell", 100, 6)
    assert book.depth(5) == ([], [(100, 6)])


def test_market_order_ignores_price_and_sweeps_levels(book):
    book.place(1, A, "sell", 1, 100)
    book.place(2, A, "sell", 1, 200)
    assert book.place(3, B, "buy", 2, None, "market") == [
        ("accepted", 3), ("trade", 1, 3, 100, 1), ("trade", 2, 3, 200, 1), ("done", 3),
        ("level", "sell", 100, 0), ("level", "sell", 200, 0)]


def test_market_order_remainder_is_cancelled_for_no_liquidity(book):
    book.place(1, A, "buy", 1, 100)
    assert book.place(2, B, "sell", 3, 7, "market") == [
        ("accepted", 2), ("trade", 1, 2, 100, 1), ("cancelled", 2, "no_liquidity"), ("level", "buy", 100, 0)]


def test_market_order_on_an_empty_side_is_cancelled(book):
    assert book.place(1, A, "buy", 3, None, "market") == [("accepted", 1), ("cancelled", 1, "no_liquidity")]


def test_ioc_remainder_is_cancelled(book):
    book.place(1, A, "sell", 1, 100)
    assert book.place(2, B, "buy", 3, 100, "limit", "ioc") == [
        ("accepted", 2), ("trade", 1, 2, 100, 1), ("cancelled", 2, "ioc"), ("level", "sell", 100, 0)]


def test_ioc_filled_in_full_is_done(book):
    book.place(1, A, "sell", 3, 100)
    assert book.place(2, B, "buy", 3, 100, "limit", "ioc")[2] == ("done", 2)


def test_ioc_that_does_not_cross_is_cancelled_without_trading(book):
    assert book.place(1, A, "buy", 3, 100, "limit", "ioc") == [("accepted", 1), ("cancelled", 1, "ioc")]


def test_fok_order_that_cannot_fill_trades_nothing(book):
    book.place(1, A, "sell", 2, 100)
    assert book.place(2, B, "buy", 3, 100, "limit", "fok") == [("rejected", 2, "fok_unfillable")]
    assert book.depth(5) == ([], [(100, 2)])


def test_fok_order_exactly_fillable_across_levels_fills(book):
    book.place(1, A, "sell", 2, 100)
    book.place(2, A, "sell", 1, 101)
    book.place(3, A, "sell", 9, 102)
    assert book.place(4, B, "buy", 3, 101, "limit", "fok") == [
        ("accepted", 4), ("trade", 1, 4, 100, 2), ("trade", 2, 4, 101, 1), ("done", 4),
        ("level", "sell", 100, 0), ("level", "sell", 101, 0)]


def test_fok_does_not_count_liquidity_beyond_its_limit(book):
    book.place(1, A, "sell", 2, 100)
    book.place(2, A, "sell", 5, 102)
    assert book.place(3, B, "buy", 3, 101, "limit", "fok") == [("rejected", 3, "fok_unfillable")]


def test_fok_under_expire_maker_skips_its_own_makers_when_counting(book):
    book.place(1, B, "sell", 5, 100)
    book.place(2, A, "sell", 2, 100)
    assert book.place(3, B, "buy", 3, 100, "limit", "fok", "expire_maker") == [("rejected", 3, "fok_unfillable")]
    assert book.place(4, B, "buy", 2, 100, "limit", "fok", "expire_maker") == [
        ("accepted", 4), ("cancelled", 1, "self_trade"), ("trade", 2, 4, 100, 2), ("done", 4),
        ("level", "sell", 100, 0)]


def test_fok_under_expire_taker_stops_counting_at_its_first_own_maker(book):
    book.place(1, A, "sell", 2, 100)
    book.place(2, B, "sell", 5, 100)
    book.place(3, A, "sell", 5, 100)
    assert book.place(4, B, "buy", 3, 100, "limit", "fok") == [("rejected", 4, "fok_unfillable")]
    assert book.place(5, B, "buy", 2, 100, "limit", "fok")[:3] == [
        ("accepted", 5), ("trade", 1, 5, 100, 2), ("done", 5)]


def test_post_only_that_would_cross_is_rejected(book):
    book.place(1, A, "sell", 2, 100)
    assert book.place(2, A, "buy", 1, 100, "limit", "post_only") == [("rejected", 2, "post_only_would_cross")]


def test_post_only_one_tick_away_rests(book):
    book.place(1, A, "sell", 2, 100)
    assert book.place(2, B, "buy", 1, 99, "limit", "post_only") == [
        ("accepted", 2), ("rested", 2, 1), ("level", "buy", 99, 1)]


def test_self_trade_expire_taker_cancels_the_taker_and_keeps_earlier_trades(book):
    book.place(1, B, "sell", 1, 100)
    book.place(2, A, "sell", 1, 100)
    book.place(3, B, "sell", 1, 100)
    assert book.place(4, A, "buy", 5, 100) == [
        ("accepted", 4), ("trade", 1, 4, 100, 1), ("cancelled", 4, "self_trade"), ("level", "sell", 100, 2)]
    assert book.best_bid() is None


def test_self_trade_expire_taker_on_the_first_maker_changes_no_level(book):
    book.place(1, A, "sell", 1, 100)
    assert book.place(2, A, "buy", 1, 100) == [("accepted", 2), ("cancelled", 2, "self_trade")]


def test_self_trade_expire_maker_cancels_the_maker_and_goes_on(book):
    book.place(1, A, "sell", 1, 100)
    book.place(2, B, "sell", 1, 101)
    assert book.place(3, A, "buy", 2, 101, "limit", "gtc", "expire_maker") == [
        ("accepted", 3), ("cancelled", 1, "self_trade"), ("trade", 2, 3, 101, 1), ("rested", 3, 1),
        ("level", "sell", 100, 0), ("level", "sell", 101, 0), ("level", "buy", 101, 1)]


def test_self_trade_expire_both_cancels_maker_then_taker(book):
    book.place(1, A, "sell", 1, 100)
    book.place(2, A, "sell", 1, 100)
    assert book.place(3, A, "buy", 2, 100, "limit", "gtc", "expire_both") == [
        ("accepted", 3), ("cancelled", 1, "self_trade"), ("cancelled", 3, "self_trade"), ("level", "sell", 100, 1)]


def test_self_trade_mode_none_lets_an_account_trade_with_itself(book):
    book.place(1, A, "sell", 1, 100)
    assert book.place(2, A, "buy", 1, 100, "limit", "gtc", "none")[1] == ("trade", 1, 2, 100, 1)


def test_self_trade_prevention_ignores_makers_the_taker_does_not_cross(book):
    book.place(1, B, "sell", 1, 100)
    book.place(2, A, "sell", 1, 105)
    assert book.place(3, A, "buy", 2, 100) == [
        ("accepted", 3), ("trade", 1, 3, 100, 1), ("rested", 3, 1), ("level", "sell", 100, 0),
        ("level", "buy", 100, 1)]


def test_cancel_removes_a_resting_order(book):
    book.place(1, A, "buy", 2, 100)
    book.place(2, A, "buy", 3, 100)
    assert book.cancel(1) == [("accepted", 1), ("cancelled", 1, "user"), ("level", "buy", 100, 3)]


def test_cancel_of_the_last_order_empties_the_level(book):
    book.place(1, A, "buy", 2, 100)
    book.place(2, A, "buy", 2, 99)
    assert book.cancel(1)[-1] == ("level", "buy", 100, 0)
    assert book.best_bid() == 99


@pytest.mark.parametrize("setup", ["never_placed", "filled", "cancelled", "rejected"])
def test_cancel_of_an_order_that_is_not_resting_is_unknown(book, setup):
    if setup == "filled":
        book.place(7, A, "sell", 1, 100)
        book.place(8, B, "buy", 1, 100)
    elif setup == "cancelled":
        book.place(7, A, "sell", 1, 100)
        book.cancel(7)
    elif setup == "rejected":
        book.place(7, A, "sell", 0, 100)
    assert book.cancel(7) == [("rejected", 7, "unknown_order")]


def test_reduce_keeps_time_priority(book):
    book.place(1, A, "sell", 5, 100)
    book.place(2, A, "sell", 5, 100)
    assert book.reduce(1, 2) == [("accepted", 1), ("level", "sell", 100, 7)]
    assert book.place(3, B, "buy", 3, 100)[1:3] == [("trade", 1, 3, 100, 2), ("trade", 2, 3, 100, 1)]


def test_reduce_to_zero_cancels(book):
    book.place(1, A, "sell", 5, 100)
    assert book.reduce(1, 0) == [("accepted", 1), ("cancelled", 1, "user"), ("level", "sell", 100, 0)]


def test_reduce_to_the_same_quantity_changes_nothing(book):
    book.place(1, A, "sell", 5, 100)
    assert book.reduce(1, 5) == [("accepted", 1)]


@pytest.mark.parametrize("quantity, reason", [(6, "cannot_increase"), (-1, "invalid_quantity")])
def test_reduce_rejects_an_increase_or_a_negative(book, quantity, reason):
    book.place(1, A, "sell", 5, 100)
    assert book.reduce(1, quantity) == [("rejected", 1, reason)]


def test_reduce_of_an_unknown_order_is_rejected(book):
    assert book.reduce(9, 1) == [("rejected", 9, "unknown_order")]


@pytest.mark.parametrize("quantity, price, order_type, reason", [
    (0, 100, "limit", "invalid_quantity"),
    (-3, 100, "limit", "invalid_quantity"),
    (1, 0, "limit", "invalid_price"),
    (1, -5, "limit", "invalid_price"),
    (1, None, "limit", "invalid_price"),
    (0, None, "market", "invalid_quantity"),
])
def test_invalid_place_is_rejected_and_changes_nothing(book, quantity, price, order_type, reason):
    book.place(1, A, "sell", 1, 100)
    assert book.place(2, B, "buy", quantity, price, order_type) == [("rejected", 2, reason)]
    assert book.depth(5) == ([], [(100, 1)])


def test_an_order_id_is_never_reused_whatever_became_of_it(book):
    book.place(1, A, "buy", 0, 100)                      # rejected
    assert book.place(1, A, "buy", 1, 100) == [("rejected", 1, "duplicate_order_id")]
    book.place(2, A, "buy", 1, 100)
    book.cancel(2)
    assert book.place(2, A, "buy", 1, 100) == [("rejected", 2, "duplicate_order_id")]


def test_duplicate_is_checked_before_quantity_and_price(book):
    book.place(1, A, "buy", 1, 100)
    assert book.place(1, A, "buy", 0, 0) == [("rejected", 1, "duplicate_order_id")]


def test_large_order_ids_are_remembered_exactly(book):
    big = 2**62 + 12345
    book.place(big, A, "buy", 1, 100)
    assert book.place(big + 1, A, "buy", 1, 100)[0] == ("accepted", big + 1)
    assert book.place(big, A, "buy", 1, 100) == [("rejected", big, "duplicate_order_id")]


def test_depth_lists_the_best_levels_first(book):
    for order_id, (side, price) in enumerate([("buy", 98), ("buy", 99), ("buy", 97), ("sell", 103),
                                              ("sell", 101), ("sell", 102)], start=1):
        book.place(order_id, A, side, order_id, price)
    assert book.depth(2) == ([(99, 2), (98, 1)], [(101, 5), (102, 6)])
