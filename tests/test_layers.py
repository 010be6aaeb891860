"""The dependency rule, checked on the source: testing -> entrypoints -> adapters |
service_layer -> ports -> domain (the testing kit outermost: nothing imports it).

tox's `layers` env runs import-linter with the same contracts; this test keeps the rule in
the default test run too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Inner to outer; the use cases (service_layer) and the adapters are independent of each other.
LAYERS = ["domain", "ports", "service_layer", "adapters", "entrypoints", "testing"]
INDEPENDENT = {"adapters": {"service_layer"}, "service_layer": {"adapters"}}


PACKAGE = "conversation_service"


def imported_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def imported_roots(path: Path) -> set[str]:
    """The top-level names imported, our own layers named by their layer (`domain`, ...)."""
    roots = set()
    for name in imported_names(path):
        parts = name.split(".")
        roots.add(parts[1] if parts[0] == PACKAGE and len(parts) > 1 else parts[0])
    return roots


def modules_of(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", LAYERS)
def test_no_layer_imports_an_outer_one(layer: str) -> None:
    outer = set(LAYERS[LAYERS.index(layer) + 1 :]) | INDEPENDENT.get(layer, set())
    for path in modules_of(layer):
        wrong = imported_roots(path) & outer
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_every_module_imports_the_layers_by_their_installed_name() -> None:
    # `import domain.model` next to `import conversation_service.domain.model` would load the
    # same file twice, as two modules with two sets of classes.
    for path in [
        *ROOT.glob("tests/**/*.py"),
        *ROOT.glob("bench/*.py"),
        *ROOT.glob("examples/**/*.py"),
    ] + [p for layer in LAYERS for p in modules_of(layer)]:
        bare = {name for name in imported_names(path) if name.split(".")[0] in LAYERS}
        assert not bare, f"{path.relative_to(ROOT)} imports {sorted(bare)}"


def test_domain_imports_only_the_standard_library_and_attrs() -> None:
    allowed = set(sys.stdlib_module_names) | {"attrs", "domain"}
    for path in modules_of("domain"):
        extra = imported_roots(path) - allowed
        assert not extra, f"{path.relative_to(ROOT)} imports {sorted(extra)}"


def test_the_use_cases_know_no_framework() -> None:
    frameworks = {"trio", "quart", "quart_trio", "hypercorn", "databases", "httpx", "cattrs"}
    for path in modules_of("service_layer"):
        assert not imported_roots(path) & frameworks, path.relative_to(ROOT)


def test_asyncio_stays_inside_the_sql_adapter() -> None:
    for layer in LAYERS:
        for path in modules_of(layer):
            if path.is_relative_to(ROOT / "adapters" / "sql"):
                continue
            assert "asyncio" not in imported_roots(path), path.relative_to(ROOT)
