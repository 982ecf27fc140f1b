"""Test-only fault injectors: adaptive books that go wrong on purpose. The worker loads one through
`MATCHING_ADAPTIVE_BOOK=tests.matching.faulty_books:<Class>`; unit tests pass the class directly."""
import time

from matching.adaptive_book import AdaptiveOrderBook

EVERY = 50     # a fault every EVERY-th call of the faulty method


class WrongFillsBook(AdaptiveOrderBook):
    """Every EVERY-th place that trades reports its first trade one lot short."""

    calls = 0

    def place(self, *args, **kwargs):
        events = super().place(*args, **kwargs)
        trades = [index for index, event in enumerate(events) if event[0] == "trade"]
        if trades:
            type(self).calls += 1
            if type(self).calls % EVERY == 0:
                maker, taker, price, quantity = events[trades[0]][1:]
                events[trades[0]] = ("trade", maker, taker, price, quantity - 1)
        return events


class RaisingBook(AdaptiveOrderBook):
    """Every EVERY-th place raises, as a bug in the new book would."""

    calls = 0

    def place(self, *args, **kwargs):
        type(self).calls += 1
        if type(self).calls % EVERY == 0:
            raise RuntimeError("injected fault in the adaptive book")
        return super().place(*args, **kwargs)


class SlowBook(AdaptiveOrderBook):
    """Every EVERY-th place takes 60 ms (over the default 50 ms limit)."""

    calls = 0

    def place(self, *args, **kwargs):
        type(self).calls += 1
        if type(self).calls % EVERY == 0:
            time.sleep(0.06)
        return super().place(*args, **kwargs)
