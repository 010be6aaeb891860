"""The client is standalone: it speaks HTTP to the service and imports none of its layers, nor
trio or asyncio (it runs on either). import-linter checks the same in `tox -e layers`; this
keeps it in the default test run, as tests/test_layers.py does for the layers."""

from __future__ import annotations

from tests.test_layers import LAYERS, PACKAGE, ROOT, imported_names


def test_the_client_imports_no_layer_of_the_service_and_no_event_loop() -> None:
    modules = sorted((ROOT / "client").rglob("*.py"))
    assert modules
    for path in modules:
        for name in imported_names(path):
            parts = name.split(".")
            assert parts[0] not in LAYERS, f"{path.name} imports {name}"
            if parts[0] == PACKAGE:
                assert parts[1] == "client", f"{path.name} imports {name}"
            assert parts[0] not in ("trio", "asyncio"), f"{path.name} imports {name}"


def test_the_installed_name_links_to_the_client_folder() -> None:
    link = ROOT / "conversation_service" / "client"
    assert link.is_symlink() and str(link.readlink()) == "../client"
