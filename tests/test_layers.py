"""Imports point one way (DESIGN.md, *Package layout*): surfaces → library → capture and
pipeline → store → the domain.

`LAYERS` lists the layers from the bottom; a module may import its own layer and the ones
below. A module belongs to the layer of the longest entry that is its name or a dotted prefix
of it, so a package can keep a few modules on another layer than its own (metrics' vocabulary
is domain, its service reads the store). Two checks:

- statically, every ``import``/``from`` statement of every module, at any depth (lazy imports
  inside functions, ``TYPE_CHECKING`` blocks), is checked against the order;
- dynamically, each layer's modules are imported in a fresh interpreter, and a module of a
  higher layer in ``sys.modules`` fails, naming the arrow that pulled it in.

`EXCEPTIONS` names the upward arrows that remain, each with its reason; keep it short.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

import llmtrail

PACKAGE = Path(llmtrail.__file__).resolve().parent

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "domain",
        (
            "llmtrail",  # the package itself: the record and the errors
            "llmtrail.errors",
            "llmtrail.record",
            "llmtrail.schema",
            "llmtrail.span",
            "llmtrail.model_ids",
            "llmtrail.pricing",
            "llmtrail.timerange",
            "llmtrail.gunzip",
            "llmtrail.threads",  # a process's thread ids, for what sets niceness per thread
            # metrics' vocabulary: GetMetricData's shapes, the rollup dimensions and the
            # latency sketch, which the store's rollup tables are built from
            "llmtrail.metrics",
        ),
    ),
    ("sdk", ("llmtrail.sdk",)),  # the light SDK: nothing of the store or the server
    # settings sit with the store: they validate store URLs and object-store settings with
    # the store's own parsers, and the store's factories read them
    ("store", ("llmtrail.store", "llmtrail.config")),
    # security's keys, principals and logging configuration are read by the gateway
    ("capture", ("llmtrail.capture", "llmtrail.pipeline", "llmtrail.security")),
    (
        "library",
        (
            "llmtrail.query",
            "llmtrail.analytics",
            "llmtrail.alerts",
            "llmtrail.reports",
            "llmtrail.dashboards",
            "llmtrail.metrics.math",
            "llmtrail.metrics.requests",
            "llmtrail.metrics.service",
            "llmtrail.metrics.prometheus",
            "llmtrail.demo",  # drives the gateway's sim and the SDK
            "llmtrail.testing",  # local upstreams for tests and benchmarks
        ),
    ),
    ("surfaces", ("llmtrail.server", "llmtrail.web", "llmtrail.cli", "llmtrail.__main__")),
)

# (importer, imported, reason): upward arrows that stay until the code they need moves down.
EXCEPTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "llmtrail.security.retention_schedule",
        "llmtrail.alerts.lease",
        "retention runs under the same StateStore lease as the alarm evaluator; the lease "
        "(alerts/lease.py, which needs only the StateStore) belongs below both",
    ),
)

RANK = {prefix: rank for rank, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes}
NAMES = [name for name, _ in LAYERS]


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package, by name."""
    found = (p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    return {module_name(p, package): p for p in sorted(found)}


def rank_of(module: str) -> int | None:
    """The layer (index in `LAYERS`) of an llmtrail module; None for other modules and for
    llmtrail modules `LAYERS` does not place (the entry ``llmtrail`` is the package alone)."""
    matches = [p for p in RANK if module == p or (p != "llmtrail" and module.startswith(p + "."))]
    return RANK[max(matches, key=len)] if matches else None


def excepted(importer: str, imported: str, *, loading: bool = False) -> bool:
    """Whether the arrow is in `EXCEPTIONS`; when ``loading``, the packages of an excepted
    module count too (importing a module loads its packages first)."""
    return any(
        (importer == a or importer.startswith(a + "."))
        and (
            imported == b
            or imported.startswith(b + ".")
            or (loading and b.startswith(imported + "."))
        )
        for a, b, _ in EXCEPTIONS
    )


def imported_modules(
    source: str, module: str, known: Iterable[str], *, is_package: bool = False
) -> list[tuple[int, str]]:
    """``(line, module)`` for every llmtrail module an import statement names, at any depth.
    ``from p import x`` names ``p.x`` when that is a module in ``known``, else ``p``."""
    modules = set(known)
    package = module if is_package else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.append((node.lineno, sub if sub in modules else target))
    return [(line, name) for line, name in out if name.partition(".")[0] == "llmtrail"]


def upward_imports(
    source: str, module: str, known: Iterable[str], *, is_package: bool = False
) -> list[str]:
    """The imports of ``source`` (the text of ``module``) that point to a higher layer and
    are not in `EXCEPTIONS`, as ``module:line imports name (layer → layer)``."""
    own = rank_of(module)
    assert own is not None, module
    found = []
    for line, name in imported_modules(source, module, known, is_package=is_package):
        rank = rank_of(name)
        if rank is not None and rank > own and not excepted(module, name):
            found.append(f"{module}:{line} imports {name} ({NAMES[own]} → {NAMES[rank]})")
    return found


def first_upward_arrow(loaded: str, importer_of: Mapping[str, str | None], rank: int) -> str:
    """The arrow that brought ``loaded`` (above layer ``rank``) in: follow who imported whom
    back to the first importer at or below ``rank``."""
    current = loaded
    while True:
        importer = importer_of.get(current)
        importer_rank = rank_of(importer) if importer else None
        if importer is None or importer_rank is None or importer_rank <= rank:
            return f"{importer} → {current}"
        current = importer


def test_every_module_has_a_layer_and_every_entry_names_a_module() -> None:
    modules = all_modules()
    unplaced = [m for m in modules if rank_of(m) is None]
    assert not unplaced, f"modules LAYERS does not place: {unplaced}"
    stale = [p for p in RANK if p not in modules]
    assert not stale, f"LAYERS names modules that do not exist: {stale}"
    for importer, imported, _ in EXCEPTIONS:
        assert importer in modules and imported in modules, (importer, imported)


def test_no_import_statement_points_up() -> None:
    modules = all_modules()
    found = [
        arrow
        for name, path in modules.items()
        for arrow in upward_imports(
            path.read_text(), name, modules, is_package=path.name == "__init__.py"
        )
    ]
    assert not found, "imports that point up:\n" + "\n".join(found)


def test_every_exception_is_still_needed() -> None:
    modules = all_modules()
    for importer, imported, _ in EXCEPTIONS:
        names = [n for _, n in imported_modules(modules[importer].read_text(), importer, modules)]
        assert imported in names, f"{importer} no longer imports {imported}: drop the exception"


_LOAD_LAYER = """
import importlib, json, sys

class Witness:
    '''Notes who imports each llmtrail module first; finds nothing itself.'''
    importer_of = {}

    def find_spec(self, name, path=None, target=None):
        if name.startswith("llmtrail") and name not in self.importer_of:
            frame = sys._getframe(1)
            while frame is not None:
                who = frame.f_globals.get("__name__", "")
                if who.startswith("llmtrail") and who != name:
                    break
                frame = frame.f_back
            self.importer_of[name] = who if frame is not None else None
        return None

witness = Witness()
sys.meta_path.insert(0, witness)
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
print(json.dumps(witness.importer_of))
"""


@pytest.mark.parametrize("layer", NAMES[:-1])
def test_importing_a_layer_loads_nothing_above_it(layer: str) -> None:
    rank = NAMES.index(layer)
    members = sorted(m for m in all_modules() if rank_of(m) == rank)
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_LAYER, json.dumps(members)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    importer_of: dict[str, str | None] = json.loads(done.stdout.splitlines()[-1])
    above = sorted(m for m in importer_of if (rank_of(m) or 0) > rank)
    arrows = {first_upward_arrow(m, importer_of, rank) for m in above}
    arrows = {a for a in arrows if not excepted(*a.split(" → "), loading=True)}
    # importing ``p.m`` loads ``p`` first: name the module, not also its package
    arrows -= {a for a in arrows if any(b.startswith(a + ".") for b in arrows)}
    assert not arrows, f"importing the {layer} layer loads higher layers:\n" + "\n".join(
        sorted(arrows)
    )


# -- the checkers can fail ---------------------------------------------------------------------


def test_the_static_check_flags_an_upward_import_even_inside_a_function() -> None:
    known = {"llmtrail.server.app", "llmtrail.analytics.budgets", "llmtrail.store.rows"}
    source = (
        "from llmtrail.record import InvocationRecord\n"
        "from llmtrail.store import rows\n"
        "import llmtrail.analytics.budgets as budgets\n"
        "\n"
        "def serve():\n"
        "    from ..server.app import create_app\n"
        "    return create_app\n"
    )
    found = upward_imports(source, "llmtrail.store.fake", known)
    assert found == [
        "llmtrail.store.fake:3 imports llmtrail.analytics.budgets (store → library)",
        "llmtrail.store.fake:6 imports llmtrail.server.app (store → surfaces)",
    ]
    assert upward_imports(source, "llmtrail.cli.fake", known) == []


def test_the_static_check_judges_a_module_imported_from_its_package_by_the_module() -> None:
    known = {"llmtrail.metrics.service", "llmtrail.metrics.sketch"}
    source = "from llmtrail.metrics import service, sketch\n"
    assert upward_imports(source, "llmtrail.store.fake", known) == [
        "llmtrail.store.fake:1 imports llmtrail.metrics.service (store → library)"
    ]


def test_the_dynamic_check_names_the_arrow_that_pulled_a_layer_in() -> None:
    importer_of = {
        "llmtrail.store.rows": None,
        "llmtrail.query.compiler": "llmtrail.store.rows",
        "llmtrail.query.parser": "llmtrail.query.compiler",
        "llmtrail.server.app": "llmtrail.query.parser",
    }
    store = NAMES.index("store")
    assert first_upward_arrow("llmtrail.server.app", importer_of, store) == (
        "llmtrail.store.rows → llmtrail.query.compiler"
    )
