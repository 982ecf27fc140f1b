"""`make run` supervises a matching worker for every shard its pairs name, beside web and Celery."""
from decimal import Decimal

import pytest

from exchange.models import TradingPair
from exchange.serving.processes import child_processes, shards_in_use


@pytest.mark.django_db
def test_every_shard_a_pair_names_gets_its_worker(pairs):
    TradingPair.objects.create(symbol="SOLUSDT", base_asset="SOL", quote_asset="USDT", tick_size=Decimal("0.01"),
                               lot_size=Decimal("0.01"), shard=2)

    children = {child.name: child.argv for child in child_processes(8080, 8081, shards_in_use())}

    assert shards_in_use() == [0, 2]
    assert children["matching-worker-0"][-3:] == ["run_matching_worker", "--shard", "0"]
    assert children["matching-worker-2"][-3:] == ["run_matching_worker", "--shard", "2"]
    assert {"web", "websockets", "celery-worker", "celery-beat"} <= set(children)


@pytest.mark.django_db
def test_shard_zero_has_a_worker_even_before_any_pair_exists():
    assert shards_in_use() == [0]
