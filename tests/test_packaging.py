"""The installed package lives under one name, `conversation_service` (the testing kit and its
entry points included), and shares no files with other projects: PyPI's `entrypoints` (a
dependency of older Jupyter and flake8 tooling) installs beside it, and uninstalling either
leaves the other whole."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conversation_service.entrypoints.http.playground_routes import PLAYGROUND_ASSETS

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=300, cwd=cwd
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", out, ROOT)
    (built,) = out.glob("conversation_service-*.whl")
    return built


def test_the_wheel_has_one_top_level_package_holding_every_layer(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert tops == {"conversation_service"}
    for module in (
        "domain/model.py", "ports/storage.py", "service_layer/conversation_service.py",
        "adapters/actors/session_actor.py", "adapters/llm/models.toml",
        "entrypoints/cli.py", "entrypoints/http/docs.html", "client/sync_client.py",
        "entrypoints/http/playground/index.html",
        *(f"entrypoints/http/playground/{name}" for name in PLAYGROUND_ASSETS),
        "testing/strategies/__init__.py", "testing/scripted.py", "testing/upstream/openai.py",
        "testing/store_contract/__init__.py", "testing/plugin.py", "testing/verify/command.py",
    ):  # fmt: skip
        assert f"conversation_service/{module}" in names
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    declared = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[pytest11]\nconversation_service = conversation_service.testing.plugin" in declared
    assert "verify = conversation_service.testing.verify.command" in declared
    (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["conversation_service"]


def test_it_installs_beside_pypi_entrypoints_and_each_uninstalls_alone(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    pip = (
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "--quiet",
        "--disable-pip-version-check",
    )
    # Only what the two checks below import: the domain needs attrs, nothing else.
    run(*pip, "install", "--no-deps", "entrypoints==0.4", "attrs", wheel)
    # (Run away from the source tree, whose layer folders would shadow the installed names.)
    both = (
        "import importlib.metadata, entrypoints, conversation_service.domain.model as m;"
        "assert importlib.metadata.version('entrypoints') == '0.4';"
        # entrypoints working: it finds the service's own console script
        "ours = entrypoints.get_single('console_scripts', 'conversation-service');"
        "assert ours.module_name == 'conversation_service.entrypoints.cli', ours;"
        "print(entrypoints.__file__, m.__file__)"
    )
    printed = run(python, "-c", both, cwd=tmp_path).split()
    assert printed[0].endswith("site-packages/entrypoints.py")
    assert printed[1].endswith("site-packages/conversation_service/domain/model.py")

    run(*pip, "uninstall", "--yes", "conversation-service")
    gone = "import entrypoints; assert not entrypoints.get_group_named('console_scripts')"
    run(python, "-c", gone, cwd=tmp_path)
    run(*pip, "install", "--no-deps", wheel)
    run(*pip, "uninstall", "--yes", "entrypoints")
    run(python, "-c", "import conversation_service.domain.session_machine", cwd=tmp_path)
