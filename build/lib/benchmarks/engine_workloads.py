"""Seeded command streams for the engine benchmark.

Each workload is a list of (verb, args) with verb 0 = place, 1 = cancel, 2 = reduce, and args the
positional arguments of the book method, so the timed loop does nothing but call the book.
"""
from __future__ import annotations

import random

PLACE, CANCEL, REDUCE = 0, 1, 2
MID = 1_000_000        # ticks


def balanced(count: int, seed: int = 1) -> list[tuple]:
    """A random-walk market: ~60% limit orders around a drifting mid, 10% market, 30% cancels."""
    rng = random.Random(seed)
    commands: list[tuple] = []
    recent: list[int] = []
    mid = MID
    next_id = 1
    for _ in range(count):
        mid += rng.choice((-1, 0, 0, 1))
        roll = rng.random()
        if roll < 0.60:
            side = "buy" if rng.random() < 0.5 else "sell"
            offset = 1 + int(rng.expovariate(0.1))
            price = mid - offset if side == "buy" else mid + offset   # some cross as the mid drifts
            commands.append((PLACE, (next_id, rng.randrange(1000), side, rng.randint(1, 20), price)))
            recent.append(next_id)
            next_id += 1
        elif roll < 0.70:
            side = "buy" if rng.random() < 0.5 else "sell"
            commands.append((PLACE, (next_id, rng.randrange(1000), side, rng.randint(1, 30), None, "market")))
            next_id += 1
        else:
            target = recent[-1 - int(rng.expovariate(0.01)) % len(recent)] if recent else 1
            commands.append((CANCEL, (target,)))
    return commands


def deep_book(count: int, seed: int = 2, resting: int = 100_000, half_range: int = 50_000) -> list[tuple]:
    """100,000 orders resting over +-50,000 ticks, then churn that keeps the book that deep."""
    rng = random.Random(seed)
    commands: list[tuple] = []
    live: list[int] = []
    next_id = 1

    def place_far() -> None:
        nonlocal next_id
        side = "buy" if rng.random() < 0.5 else "sell"
        distance = rng.randint(1, half_range)
        price = MID - distance if side == "buy" else MID + distance
        commands.append((PLACE, (next_id, rng.randrange(10_000), side, rng.randint(1, 50), price)))
        live.append(next_id)
        next_id += 1

    for _ in range(min(resting, count)):
        place_far()
    while len(commands) < count:
        roll = rng.random()
        if roll < 0.45:
            place_far()
        elif roll < 0.55:
            side = "buy" if rng.random() < 0.5 else "sell"
            commands.append((PLACE, (next_id, rng.randrange(10_000), side, rng.randint(1, 40), None, "market")))
            next_id += 1
        else:
            index = rng.randrange(len(live))
            live[index], live[-1] = live[-1], live[index]
            commands.append((CANCEL, (live.pop(),)))
    return commands


def market_maker(count: int, seed: int = 3) -> list[tuple]:
    """A market maker re-quoting ten levels a side: post-only quotes, many cancels and reduces,
    and a trickle of IOC and market takers from other accounts."""
    rng = random.Random(seed)
    commands: list[tuple] = []
    quotes: list[int] = []
    mid = MID
    next_id = 1
    maker_account = 1
    for _ in range(count):
        roll = rng.random()
        if roll < 0.35:
            mid += rng.choice((-1, 0, 1))
            side = "buy" if rng.random() < 0.5 else "sell"
            level = rng.randint(1, 10)
            price = mid - level if side == "buy" else mid + level
            commands.append((PLACE, (next_id, maker_account, side, rng.randint(5, 100), price, "limit",
                                     "post_only")))
            quotes.append(next_id)
            next_id += 1
        elif roll < 0.70:
            target = quotes[-1 - int(rng.expovariate(0.02)) % len(quotes)] if quotes else 1
            commands.append((CANCEL, (target,)))
        elif roll < 0.90:
            target = quotes[-1 - int(rng.expovariate(0.02)) % len(quotes)] if quotes else 1
            commands.append((REDUCE, (target, rng.randint(0, 5))))
        else:
            side = "buy" if rng.random() < 0.5 else "sell"
            kind = rng.choice(("ioc", "market", "fok"))
            price = mid + 3 if side == "buy" else mid - 3
            order_type = "market" if kind == "market" else "limit"
            commands.append((PLACE, (next_id, rng.randint(2, 500), side, rng.randint(1, 60), price, order_type,
                                     "gtc" if kind == "market" else kind)))
            next_id += 1
    return commands


WORKLOADS = {"balanced": balanced, "deep_book": deep_book, "market_maker": market_maker}
