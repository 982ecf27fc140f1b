#!/usr/bin/env bash
# Canary rollout, the deployment guide's `./scripts/canary-rollout.sh --start=10 --target=100 --step=10 --interval=10m`:
#   scripts/canary-rollout.sh --start=10 --target=100 --step=10 --interval=10m [--namespace=trading] [--dry-run]
#   scripts/canary-rollout.sh --pair=BTCUSDT --start=10 --target=100 --step=10 --interval=10m [--finalize]
#       [--base-url=http://localhost:8080]
# Without --pair, the new release's pods (k8s/canary: trading-service-canary, under the same Service as
# production's) take --start% of the requests, then --step% more every --interval while
# scripts/monitor-deployment.sh --environment=canary passes; at 100% production's Deployment takes the canary's
# image and the canary is scaled to 0. A failed watch scales the canary to 0 and exits 1. The share is the
# canary's share of the ready pods. --dry-run prints every kubectl call.
# With --pair, the pair's engine migration instead: starts it, holds it at --start, then every --interval
# checks the pair's status and raises the percentage by --step up to --target; stops with an error if the plan
# was rolled back or stopped or the API refuses a step; with --finalize, a rollout reaching 100% is finalized.
# EXCHANGE_TOKEN: a staff user's API token.
set -euo pipefail
source "$(dirname "$0")/_operator_api.sh"
source "$(dirname "$0")/_kubectl.sh"

PAIR="" START=10 TARGET=100 STEP=10 INTERVAL=600 FINALIZE=no
for argument in "$@"; do
    case "$argument" in
        --pair=*) PAIR="${argument#*=}" ;;
        --start=*) START="${argument#*=}"; is_percentage "$START" --start ;;
        --target=*) TARGET="${argument#*=}"; is_percentage "$TARGET" --target ;;
        --step=*) STEP="${argument#*=}"; is_percentage "$STEP" --step ;;
        --interval=*) INTERVAL="$(seconds_of "${argument#*=}" --interval)" ;;
        --base-url=*) BASE_URL="${argument#*=}" ;;
        --finalize) FINALIZE=yes ;;
        --namespace=*) NAMESPACE="${argument#*=}" ;;
        --dry-run) DRY_RUN=yes ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown flag $argument (see --help)" ;;
    esac
done
[ "$STEP" -gt 0 ] || die "--step must be at least 1"
[ "$START" -le "$TARGET" ] || die "--start=$START is above --target=$TARGET"
[ -n "$PAIR" ] || [ "$FINALIZE" = no ] || die "--finalize needs --pair (it finalizes a pair's migration)"

# canary_replicas PERCENT STABLE: the canary pods that make PERCENT% of STABLE + canary pods.
canary_replicas() {
    echo $(( ($2 * $1 + (100 - $1) - 1) / (100 - $1) ))
}

rollout_canary() {
    need_kubectl
    local stable=2 percentage=$START image replicas
    if [ "$DRY_RUN" = yes ]; then
        kube get deployment/trading-service -o "jsonpath={.spec.replicas}"
        echo "# (taking $stable production replicas for the dry run)"
    else
        stable="$(kube get deployment/trading-service -o "jsonpath={.spec.replicas}")"
    fi
    while :; do
        if [ "$percentage" -lt 100 ]; then
            replicas="$(canary_replicas "$percentage" "$stable")"
            kube scale deployment/trading-service-canary --replicas="$replicas"
            kube rollout status deployment/trading-service-canary --timeout=600s
        else
            image="$( [ "$DRY_RUN" = yes ] && echo '<the canary image>' || \
                kube get deployment/trading-service-canary -o "jsonpath={.spec.template.spec.containers[0].image}")"
            [ "$DRY_RUN" = yes ] && kube get deployment/trading-service-canary \
                -o "jsonpath={.spec.template.spec.containers[0].image}"
            kube set image deployment/trading-service "trading-container=$image"
            kube rollout status deployment/trading-service --timeout=600s
            kube scale deployment/trading-service-canary --replicas=0
            echo "canary: production runs $image"
            return 0
        fi
        echo "canary: $replicas pods beside $stable ($percentage% asked, $((100 * replicas / (replicas + stable)))% of the pods)"
        if [ "$DRY_RUN" = yes ]; then
            echo "scripts/monitor-deployment.sh --environment=canary --duration=${INTERVAL}s --namespace=$NAMESPACE"
        elif ! "$(dirname "$0")/monitor-deployment.sh" --environment=canary --duration="${INTERVAL}s" \
                --namespace="$NAMESPACE" --base-url="$BASE_URL"; then
            kube scale deployment/trading-service-canary --replicas=0
            echo "canary: the watch failed at $percentage%; the canary is scaled to 0" >&2
            exit 1
        fi
        [ "$percentage" -lt "$TARGET" ] || { echo "canary: holding at $percentage%"; return 0; }
        percentage=$((percentage + STEP > TARGET ? TARGET : percentage + STEP))
    done
}

if [ -z "$PAIR" ]; then
    rollout_canary
    exit 0
fi

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
