"""What the Dockerfile builds on, short of Docker itself (which these machines cannot reach a base image for):
the project's wheel holds every package, migration, command and the load test the roles run, and the image's
collectstatic step works with the database and Redis named but unreachable."""
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_what_every_role_runs(tmp_path):
    """Built as the Dockerfile's first stage builds it: from what its COPY lines copy, and nothing else."""
    source = tmp_path / "src"
    source.mkdir()
    for copied in re.findall(r"^COPY (?!--)(\S+(?: \S+)*) \S+$", (ROOT / "Dockerfile").read_text(), re.MULTILINE):
        for name in copied.split():
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("exchange_backoffice-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    for command in ("serve_web", "serve_websockets", "prepare_exchange", "health_check", "validate_deployment"):
        assert f"exchange/management/commands/{command}.py" in names
    assert "matching_worker/management/commands/run_matching_worker.py" in names
    assert "exchange/migrations/0001_initial.py" in names
    assert any(name.startswith("migrations_admin/migrations/0001") for name in names)
    assert "benchmarks/http_load.py" in names and "matching/adaptive_book.py" in names
    assert not any(name.startswith("tests/") for name in names)
    shipped = {str(path.relative_to(ROOT)) for app in ("exchange", "migrations_admin")
               for folder in ("templates", "static") for path in (ROOT / app / folder).rglob("*") if path.is_file()}
    assert {"exchange/templates/exchange/market.html", "exchange/static/vendor/uplot-1.6.32/uPlot.iife.min.js",
            "migrations_admin/templates/migrations_admin/control.html"} <= shipped
    assert shipped - names == set(), "the screens' templates and static files must be in the wheel"


def test_collectstatic_as_the_image_runs_it(tmp_path):
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("DB_", "DATABASE_", "REDIS"))}
    result = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"], cwd=ROOT,
                            env={**environment, "DB_HOST": "unused", "REDIS_HOST": "unused",
                                 "STATIC_ROOT": str(tmp_path / "static")}, capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "static" / "admin").is_dir() and (tmp_path / "static" / "rest_framework").is_dir()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "RUN DB_HOST=unused REDIS_HOST=unused python manage.py collectstatic --noinput" in dockerfile
    assert "USER 10001:10001" in dockerfile
