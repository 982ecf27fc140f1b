#!/usr/bin/env bash
# Canary rollout of the adaptive order book for one pair, through the operator API:
#   scripts/canary-rollout.sh --start=10 --target=100 --step=10 --interval=10m [--pair=BTCUSDT]
#       [--base-url=http://localhost:8080] [--finalize]
# Starts the pair's migration, holds it at --start, then every --interval checks the pair's status and
# raises the percentage by --step up to --target. Stops with an error if the plan was rolled back or
# stopped (automatic rollback, emergency stop) or the API refuses a step. With --finalize, a rollout that
# reaches 100% is finalized. EXCHANGE_TOKEN: a staff user's API token.
set -euo pipefail
source "$(dirname "$0")/_operator_api.sh"

PAIR=BTCUSDT START=10 TARGET=100 STEP=10 INTERVAL=600 FINALIZE=no
for argument in "$@"; do
    case "$argument" in
        --pair=*) PAIR="${argument#*=}" ;;
        --start=*) START="${argument#*=}"; is_percentage "$START" --start ;;
        --target=*) TARGET="${argument#*=}"; is_percentage "$TARGET" --target ;;
        --step=*) STEP="${argument#*=}"; is_percentage "$STEP" --step ;;
        --interval=*) INTERVAL="$(seconds_of "${argument#*=}" --interval)" ;;
        --base-url=*) BASE_URL="${argument#*=}" ;;
        --finalize) FINALIZE=yes ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown flag $argument (see --help)" ;;
    esac
done
[ "$STEP" -gt 0 ] || die "--step must be at least 1"
[ "$START" -le "$TARGET" ] || die "--start=$START is above --target=$TARGET"

api POST /admin/migration/start "{\"pair\": \"$PAIR\", \"target_percentage\": $TARGET}" >/dev/null
# The script sets the pace: the percentage an operator sets is also the plan's target, so auto-migration
# holds there between the script's steps.
api POST /admin/migration/percentage "{\"pair\": \"$PAIR\", \"percentage\": $START}" >/dev/null
percentage=$START
echo "$PAIR: started at $percentage%"

while [ "$percentage" -lt "$TARGET" ]; do
    sleep "$INTERVAL"
    state="$(pair_status "$PAIR" | jq -r .state)"
    if [ "$state" != running ] && [ "$state" != paused ]; then
        echo "$PAIR: the migration is $state; rollout stopped at $percentage%" >&2
        exit 1
    fi
    percentage=$((percentage + STEP > TARGET ? TARGET : percentage + STEP))
    api POST /admin/migration/percentage "{\"pair\": \"$PAIR\", \"percentage\": $percentage}" >/dev/null
    echo "$PAIR: $percentage%"
done

if [ "$FINALIZE" = yes ] && [ "$percentage" -eq 100 ]; then
    api POST /admin/migration/finalize "{\"pair\": \"$PAIR\"}" >/dev/null
    echo "$PAIR: finalized"
fi
echo "$PAIR: rollout done at $percentage%"
