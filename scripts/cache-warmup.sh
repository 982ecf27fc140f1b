#!/usr/bin/env bash
# Have the matching workers publish the pairs' whole market data again (book, recent trades, 24 h ticker, klines)
# and wait until they did:  scripts/cache-warmup.sh --pairs=BTCUSDT,ETHUSDT  [--timeout=30]
# Without --pairs, every pair. Exits non-zero naming the pairs whose worker did not answer.
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
[ -x "$python" ] || python=python3
exec "$python" manage.py warm_market_data "$@"
