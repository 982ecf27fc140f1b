#!/usr/bin/env bash
# Watch a deployment, the deployment guide's `./scripts/monitor-deployment.sh --duration=30m --environment=green`:
#   scripts/monitor-deployment.sh --duration=30m --environment=blue|green|production|canary|local
#       [--interval=30s] [--base-url=http://localhost:8080] [--namespace=trading]
#       [--max-error-rate=0.0001] [--max-p95-ms=10] [--dry-run]
# Every --interval until --duration has passed, from the real endpoints: /health must be ok; the web's HTTP
# error rate (5xx share of its answers since the watch began, /metrics) below --max-error-rate; the workers'
# order processing P95 (trading_order_processing_latency_p95) below --max-p95-ms; no circuit breaker open and
# none tripped during the watch (/admin/circuit-breaker/status). For a Kubernetes environment, its web
# Deployment must also have every replica ready (kubectl); `local` is a `make run` instance. One line per look,
# then PASS or FAIL with each criterion (exit 1 on FAIL). EXCHANGE_TOKEN: a staff token; METRICS_TOKEN when
# /metrics asks for one. --dry-run prints the kubectl calls and the URLs it would read.
set -euo pipefail
source "$(dirname "$0")/_operator_api.sh"
source "$(dirname "$0")/_kubectl.sh"

DURATION=1800 INTERVAL=30 ENVIRONMENT="" MAX_ERROR_RATE=0.0001 MAX_P95_MS=10
for argument in "$@"; do
    case "$argument" in
        --duration=*) DURATION="$(seconds_of "${argument#*=}" --duration)" ;;
        --interval=*) INTERVAL="$(seconds_of "${argument#*=}" --interval)" ;;
        --environment=*) ENVIRONMENT="${argument#*=}" ;;
        --base-url=*) BASE_URL="${argument#*=}" ;;
        --namespace=*) NAMESPACE="${argument#*=}" ;;
        --max-error-rate=*) MAX_ERROR_RATE="${argument#*=}" ;;
        --max-p95-ms=*) MAX_P95_MS="${argument#*=}" ;;
        --dry-run) DRY_RUN=yes ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown flag $argument (see --help)" ;;
    esac
done
case "$ENVIRONMENT" in
    production) DEPLOYMENT=trading-service ;;
    blue|green|canary) DEPLOYMENT="trading-service-$ENVIRONMENT" ;;
    local) DEPLOYMENT="" ;;
    *) die "--environment=${ENVIRONMENT:-<missing>} must be blue, green, production, canary or local" ;;
esac
[[ "$MAX_ERROR_RATE" =~ ^[0-9.]+$ ]] || die "--max-error-rate=$MAX_ERROR_RATE is not a fraction like 0.0001"
[[ "$MAX_P95_MS" =~ ^[0-9.]+$ ]] || die "--max-p95-ms=$MAX_P95_MS is not a number of milliseconds"
[ "$INTERVAL" -gt 0 ] || die "--interval must be at least 1s"
[ -n "$DEPLOYMENT" ] && need_kubectl

if [ "$DRY_RUN" = yes ]; then
    [ -n "$DEPLOYMENT" ] && kube get "deployment/$DEPLOYMENT" -o "jsonpath={.status.readyReplicas}/{.spec.replicas}"
    for path in /health /metrics /admin/circuit-breaker/status; do echo "GET $BASE_URL$path"; done
    exit 0
fi

# metrics_figures: "<answers> <5xx answers> <worst order processing p95 in seconds>" from /metrics.
metrics_figures() {
    local args=() text
    [ -n "${METRICS_TOKEN:-}" ] && args+=(-H "Authorization: Bearer $METRICS_TOKEN")
    text="$(fetch GET /metrics "${args[@]}")" || return 1
    awk '
        /^django_http_responses_total_by_status_total\{/ { total += $NF; if ($0 ~ /status="5/) errors += $NF }
        /^trading_order_processing_latency_p95\{/ { if ($NF > p95) p95 = $NF }
        END { printf "%d %d %.9f\n", total, errors, p95 }' <<<"$text"
}

breakers_json() {
    local answer
    answer="$(api GET /admin/circuit-breaker/status)" || return 1
    jq -e 'if type == "array" then . else error("not a list of breakers") end' <<<"$answer" || {
        echo "GET $BASE_URL/admin/circuit-breaker/status: not a list of breakers: $answer" >&2; return 1; }
}

failures=()
fail() { failures+=("$1"); }
figures="$(metrics_figures)" || die "cannot read $BASE_URL/metrics (METRICS_TOKEN?)"
read -r first_total first_errors _ <<<"$figures"
breakers_now="$(breakers_json)" || die "cannot read the breakers (is EXCHANGE_TOKEN a staff token?)"
first_trips="$(jq '[.[].breaker_trips] | add // 0' <<<"$breakers_now")"
deadline=$((SECONDS + DURATION))
echo "watching ${ENVIRONMENT} at $BASE_URL for ${DURATION}s"
while :; do
    # /health answers 503 with its report when something is down: that report is read, not an error.
    health="$(curl -sS "$BASE_URL/health" | jq -r '.status // empty' 2>/dev/null || true)"
    health="${health:-unreachable}"
    if figures="$(metrics_figures)"; then
        read -r total errors p95 <<<"$figures"
    else
        fail "metrics unreadable at $(date -u +%T)"; total=$first_total errors=$first_errors p95=0
    fi
    answers=$((total - first_total)) failed=$((errors - first_errors))
    error_rate="$(awk -v a="$answers" -v f="$failed" 'BEGIN { printf "%.6f", (a > 0 ? f / a : 0) }')"
    p95_ms="$(awk -v s="$p95" 'BEGIN { printf "%.3f", s * 1000 }')"
    if breakers_now="$(breakers_json)"; then
        breakers="$(jq -r '[.[] | select(.breaker_state != "closed") | .pair] | join(",")' <<<"$breakers_now")"
        trips=$(( $(jq '[.[].breaker_trips] | add // 0' <<<"$breakers_now") - first_trips ))
    else
        fail "breakers unreadable at $(date -u +%T)"; breakers="unknown" trips=0
    fi
    ready="-"
    [ -n "$DEPLOYMENT" ] && ready="$(kube get "deployment/$DEPLOYMENT" -o "jsonpath={.status.readyReplicas}/{.spec.replicas}")"
    echo "$(date -u +%FT%TZ) health=$health errors=$failed/$answers ($error_rate) p95=${p95_ms}ms open=${breakers:-none} trips=$trips ready=$ready"
    [ "$health" = ok ] || fail "health $health at $(date -u +%T)"
    awk -v r="$error_rate" -v m="$MAX_ERROR_RATE" 'BEGIN { exit !(r >= m && r > 0) }' && fail "error rate $error_rate"
    awk -v p="$p95_ms" -v m="$MAX_P95_MS" 'BEGIN { exit !(p >= m) }' && fail "order processing p95 ${p95_ms} ms"
    [ -z "$breakers" ] || [ "$breakers" = unknown ] || fail "breakers open: $breakers"
    [ "$trips" -eq 0 ] || fail "$trips breaker trips"
    if [ -n "$DEPLOYMENT" ]; then
        [[ "$ready" =~ ^([0-9]+)/([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ] || \
            fail "$DEPLOYMENT ready $ready"
    fi
    [ "$SECONDS" -lt "$deadline" ] || break
    sleep "$INTERVAL"
done
if [ "${#failures[@]}" -eq 0 ]; then
    echo "PASS: health ok, error rate below $MAX_ERROR_RATE, p95 below ${MAX_P95_MS} ms, no breaker open or tripped"
    exit 0
fi
printf 'FAIL: %s\n' "$(printf '%s; ' "${failures[@]}" | sed 's/; $//')" >&2
exit 1
