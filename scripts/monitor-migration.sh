#!/usr/bin/env bash
# Watch one pair's migration through the operator API:
#   scripts/monitor-migration.sh --pair=BTCUSDT --duration=30m [--interval=10s]
#       [--base-url=http://localhost:8080]
# Prints a status line every --interval until --duration has passed. Exits 1 as soon as the pair's plan
# is rolled back or stopped. EXCHANGE_TOKEN: a staff user's API token.
set -euo pipefail
source "$(dirname "$0")/_operator_api.sh"

PAIR=BTCUSDT DURATION=1800 INTERVAL=10
for argument in "$@"; do
    case "$argument" in
        --pair=*) PAIR="${argument#*=}" ;;
        --duration=*) DURATION="$(seconds_of "${argument#*=}" --duration)" ;;
        --interval=*) INTERVAL="$(seconds_of "${argument#*=}" --interval)" ;;
        --base-url=*) BASE_URL="${argument#*=}" ;;
        -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown flag $argument (see --help)" ;;
    esac
done
[ "$INTERVAL" -gt 0 ] || die "--interval must be at least 1s"

deadline=$((SECONDS + DURATION))
while :; do
    status="$(pair_status "$PAIR")" || { echo "$PAIR: no status (unknown pair?)" >&2; exit 1; }
    jq -r '[(now | todate), .pair, .state, .mode, "\(.current_percentage)%",
            "target=\(.target_percentage // "-")%", "breaker=\(.breaker_state)/\(.breaker_trips)",
            "adaptive: \(.health.adaptive // {} | "cmds=\(.commands // 0) err=\(.error_rate // 0) p95us=\(.latency_p95_us // "-")")",
            "hold=\(.hold_reason)"] | join("  ")' <<<"$status"
    state="$(jq -r .state <<<"$status")"
    if [ "$state" = rolled_back ] || [ "$state" = stopped ]; then
        echo "$PAIR: the migration is $state" >&2
        exit 1
    fi
    [ $((SECONDS + INTERVAL)) -le "$deadline" ] || break
    sleep "$INTERVAL"
done
