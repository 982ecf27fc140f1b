"""What one batch transaction writes, gathered while the engines run and written by `write.py`."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matching.migration import Disagreement
    from matching_worker.session import BatchSession


@dataclass(slots=True)
class MarketChanges:
    """One pair's public changes in a batch: the levels whose totals changed (side, ticks) → lots now, between
    the engine sequences before and after the batch."""

    pair_id: int
    previous_sequence: int
    sequence: int
    levels: dict
    republish: bool = False         # an operator asked for the pair's whole published state to be written again


@dataclass
class Batch:
    """Everything one transaction writes: order states and trades in lots and ticks, request and control
    outcomes, audit entries, divergences and the engines' checkpoint."""

    now: datetime
    actor: str                                      # who the audit entries name: the shard's worker
    session: BatchSession                           # the session whose transaction claimed the batch
    orders: dict = field(default_factory=dict)      # order id -> row values for the UPDATE
    requests: list = field(default_factory=list)    # (request id, status, reason, processed at)
    trades: list = field(default_factory=list)
    audits: list = field(default_factory=list)      # (actor, action, target, details)
    touched: set = field(default_factory=set)       # ids of the pairs whose engines it moved
    controls: list = field(default_factory=list)    # (command id, status, reason)
    divergences: list[tuple[int, Disagreement]] = field(default_factory=list)   # (pair id, disagreement)
    breaker_trips: dict = field(default_factory=dict)   # pair id -> times its breaker opened in the batch
    owners: dict = field(default_factory=dict)      # order id -> (owner, pair id), for the private order updates
    market: list[MarketChanges] = field(default_factory=list)   # what to publish once the batch committed
    entries: int = 0                                # inbox entries and control commands claimed
    arrivals: list = field(default_factory=list)    # (id, pair id, kind, committed to the inbox at) of each entry
    claimed_at: float = 0.0                         # when it was claimed (epoch seconds)
    checkpoint: bytes = b""                         # the engines' state after the batch, as SQL
    announcement: bytes = b""                       # the results NOTIFY, sent after the commit
    trades_copy: str = ""                           # `trades` and `orders` in COPY's text format
    orders_copy: str = ""
    claimed_orders: list = field(default_factory=list)    # ids of the inbox rows it holds locked
    claimed_requests: list = field(default_factory=list)

    def audit(self, action: str, target: str, details: dict) -> None:
        self.audits.append((self.actor, action, target, details))
