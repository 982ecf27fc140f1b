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

# api METHOD PATH [JSON]: prints the answer; on an HTTP error prints it to stderr and returns 1.
api() {
    local method="$1" path="$2" body="${3:-}" answer status
    local args=(-sS -X "$method" -w '\n%{http_code}' -H "Accept: application/json")
    [ -n "$TOKEN" ] && args+=(-H "Authorization: Token $TOKEN")
    [ -n "$body" ] && args+=(-H "Content-Type: application/json" -d "$body")
    answer="$(curl "${args[@]}" "$BASE_URL$path")" || { echo "cannot reach $BASE_URL" >&2; return 1; }
    status="${answer##*$'\n'}"
    answer="${answer%$'\n'*}"
    if [ "$status" -ge 400 ]; then
        echo "$method $path: HTTP $status: $answer" >&2
        return 1
    fi
    echo "$answer"
}

# pair_status PAIR: the pair's object of GET /admin/migration/status.
pair_status() {
    api GET /admin/migration/status | jq -e --arg pair "$1" '.[] | select(.pair == $pair)'
}
