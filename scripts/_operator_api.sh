# Shared by the migration scripts: flags, durations and calls to the operator API. Sourced, not run.
# EXCHANGE_URL (or --base-url) is the exchange's address, EXCHANGE_TOKEN a staff user's API token.

BASE_URL="${EXCHANGE_URL:-http://localhost:8080}"
TOKEN="${EXCHANGE_TOKEN:-}"

die() {
    echo "$(basename "$0"): $*" >&2
    exit 2
}

# seconds_of 10s|5m|1h|30 -> seconds; dies on anything else.
seconds_of() {
    local value="$1" flag="$2"
    if [[ "$value" =~ ^([0-9]+)([smh]?)$ ]]; then
        local number="${BASH_REMATCH[1]}" unit="${BASH_REMATCH[2]:-s}"
        case "$unit" in
            s) echo "$number" ;;
            m) echo $((number * 60)) ;;
            h) echo $((number * 3600)) ;;
        esac
    else
        die "$flag=$value is not a duration like 30s, 10m or 1h"
    fi
}

# is_percentage VALUE FLAG: dies unless VALUE is a whole number from 0 to 100.
is_percentage() {
    [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -le 100 ] || die "$2=$1 is not a percentage from 0 to 100"
}

# fetch METHOD PATH [curl arguments...]: prints the answer's body. Anything but a 2xx with a body (a redirect, an
# error, an empty answer, nobody answering) prints the URL and the status to stderr and returns 1: a script must
# never read a failure as an answer.
fetch() {
    local method="$1" path="$2" answer status
    shift 2
    answer="$(curl -sS -X "$method" -w '\n%{http_code}' "$@" "$BASE_URL$path")" || {
        echo "$method $BASE_URL$path: cannot reach the service" >&2; return 1; }
    status="${answer##*$'\n'}"
    answer="${answer%$'\n'*}"
    if [ "$status" -lt 200 ] || [ "$status" -ge 300 ] || [ -z "$answer" ]; then
        echo "$method $BASE_URL$path: HTTP $status: ${answer:-empty answer}" >&2
        return 1
    fi
    echo "$answer"
}

# api METHOD PATH [JSON]: the operator API's answer (`fetch`'s rules).
api() {
    local method="$1" path="$2" body="${3:-}"
    local args=(-H "Accept: application/json")
    [ -n "$TOKEN" ] && args+=(-H "Authorization: Token $TOKEN")
    [ -n "$body" ] && args+=(-H "Content-Type: application/json" -d "$body")
    fetch "$method" "$path" "${args[@]}"
}

# pair_status PAIR: the pair's object of GET /admin/migration/status.
pair_status() {
    api GET /admin/migration/status | jq -e --arg pair "$1" '.[] | select(.pair == $pair)'
}
