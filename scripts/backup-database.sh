#!/usr/bin/env bash
# The pre-migration checklist's "Database backups completed": a pg_dump of the exchange's database, verified.
#   scripts/backup-database.sh [--output=backups/exchange-<UTC time>.dump] [--dry-run]
# Connects as the processes do: DATABASE_URL, or DB_HOST, DB_PORT (5432), DB_NAME (exchange), DB_USER (postgres)
# and DB_PASSWORD. Writes a custom-format dump (restore: pg_restore --clean --if-exists -d <database> FILE),
# then verifies it: pg_restore must read its table of contents, and it must hold the data of every table the
# database has. Prints the file, its size and the tables it holds; exit 1 when the dump or its check fails.
# PG_BIN=<folder> picks the client tools (they must be as new as the server).
set -euo pipefail
die() { echo "$(basename "$0"): $*" >&2; exit 2; }

OUTPUT="backups/exchange-$(date -u +%Y%m%dT%H%M%SZ).dump" DRY_RUN=no
for argument in "$@"; do
    case "$argument" in
        --output=*) OUTPUT="${argument#*=}" ;;
        --dry-run) DRY_RUN=yes ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown flag $argument (see --help)" ;;
    esac
done
[ -n "$OUTPUT" ] || die "--output must name a file"
bin="${PG_BIN:+$PG_BIN/}"
if [ -n "${DATABASE_URL:-}" ]; then
    target=("--dbname=$DATABASE_URL")
else
    export PGPASSWORD="${DB_PASSWORD:-${PGPASSWORD:-}}"
    target=(--host="${DB_HOST:-localhost}" --port="${DB_PORT:-5432}" --username="${DB_USER:-postgres}"
            --dbname="${DB_NAME:-exchange}")
fi
if [ "$DRY_RUN" = yes ]; then
    echo "${bin}pg_dump --format=custom --file=$OUTPUT ${target[*]}"
    echo "${bin}pg_restore --list $OUTPUT"
    exit 0
fi
mkdir -p "$(dirname "$OUTPUT")"
"${bin}pg_dump" --format=custom --file="$OUTPUT" "${target[@]}" || { echo "backup failed: pg_dump" >&2; exit 1; }
contents="$("${bin}pg_restore" --list "$OUTPUT")" || { echo "backup $OUTPUT is unreadable" >&2; exit 1; }
tables="$("${bin}psql" "${target[@]}" --no-psqlrc --tuples-only --no-align --command \
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")"
missing=()
for table in $tables; do
    grep -Eq "TABLE DATA public $table " <<<"$contents" || missing+=("$table")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "backup $OUTPUT lacks the data of: ${missing[*]}" >&2
    exit 1
fi
echo "backup $OUTPUT: $(wc -c <"$OUTPUT") bytes, the data of $(wc -w <<<"$tables") tables, verified with pg_restore --list"
