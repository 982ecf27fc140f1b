#!/usr/bin/env bash
# Open-loop load test of the trading API, the deployment guide's post-deployment validation:
#   scripts/load-test.sh --duration=10m --rate=1000rps [--base-url=http://localhost:8080] [--token=KEY ...]
#       [--users=20] [--pairs=BTCUSDT,ETHUSDT] [--mix=limit=70,market=5,ioc=10,cancel=15] [--connections=256]
# Requests leave on schedule whatever the server answers; latency counts from when each was due. Prints the
# offered and achieved rate, latency p50/p95/p99/max and answers by status every 5 s and at the end, checks
# that no accepted order is left pending, and exits 0 on PASS (P95 < 10 ms, errors < 0.01%, at least 99% of
# the rate achieved), 1 on FAIL. Without a token (--token or EXCHANGE_TOKEN) it creates --users traders in
# the database this checkout is configured for: the local instance's. --help lists every flag.
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
[ -x "$python" ] || python=python3
exec "$python" -m benchmarks.http_load "$@"
