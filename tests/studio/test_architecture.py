"""The shape of the code: stages import one way, studio's base imports no app, no private
helper is imported from another module. Each check is shown to fail on a planted violation."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APPS = ("studio", "generation", "review", "catalogue")
# studio's wiring: above the apps, may import all of them (see pyproject's importlinter).
STUDIO_WIRING = {
    "studio",
    "studio.asgi",
    "studio.wsgi",
    "studio.urls",
    "studio.views",
    "studio.launch",
    "studio.reconcile",
    "studio.management",
    "studio.management.commands",
    "studio.management.commands.up",
    "studio.management.commands.campaign_create",
    "studio.management.commands.items_reconcile",
    "studio.metrics",
    "studio.management.commands.backup",
    "studio.management.commands.restore",
    "studio.api",
    "studio.api.core",
    "studio.api.campaigns",
    "studio.api.items",
    "studio.api.registry",
    "studio.api.reports",
    "studio.api.review",
    "studio.api.catalogue",
    "studio.api.exports",
    "studio.api.webhooks",
}


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(lint), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _copy_apps(tmp_path: Path) -> Path:
    for app in APPS:
        shutil.copytree(REPO / app, tmp_path / app, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _modules(package: str) -> list[tuple[str, Path]]:
    base = REPO / package
    found = []
    for path in sorted(base.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, path))
    return found


def test_the_import_contracts_hold():
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("generation/services/planted.py", "from review.models import QualityResult\n"),
        ("review/planted.py", "def f():\n    from catalogue.services import asset_sync\n"),
        ("studio/queues.py", "from generation.models import Item\n"),
    ],
)
def test_the_import_check_fails_on_an_import_against_the_direction(tmp_path, module, line):
    root = _copy_apps(tmp_path)
    path = root / module
    path.write_text((path.read_text() if path.exists() else "") + "\n" + line)
    result = _lint_imports(root)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout


def test_every_studio_module_is_either_base_or_wiring():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    (base,) = [c for c in config["contracts"] if c["type"] == "forbidden"]
    unlisted = [
        name
        for name, _ in _modules("studio")
        if name not in STUDIO_WIRING and name not in base["source_modules"]
    ]
    assert unlisted == [], "classify these studio modules as base (pyproject) or wiring"


def _private_imports(name: str, path: Path) -> list[str]:
    """`from x import _helper` where x is another module of the project."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in APPS and node.module != name:
                found += [
                    f"{name}: from {node.module} import {alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                ]
    return found


def test_no_private_helper_is_imported_from_another_module():
    found = [
        hit for app in APPS for name, path in _modules(app) for hit in _private_imports(name, path)
    ]
    assert found == []


def test_the_private_import_check_finds_one(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("from generation.services.registry import _activate\n")
    assert _private_imports("generation.admin", planted) == [
        "generation.admin: from generation.services.registry import _activate"
    ]
