"""Dependencies point inward: core imports no module; web and cli are shells over the modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rathaus"
MODULES = ("inbox", "assistant", "writing", "insights", "governance")
FORBIDDEN = {
    "core": ("ai", "jobs", "web", "cli", *MODULES),
    "ai": ("jobs", "web", "cli", *MODULES),
    **{m: ("web", "cli") for m in MODULES},
    "web": ("cli",),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_point_inward(package):
    offenders = []
    for path in (SRC / package).rglob("*.py"):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "rathaus" and len(parts) > 1 and parts[1] in FORBIDDEN[package]:
                offenders.append(f"{path.relative_to(SRC)} imports {name}")
    assert offenders == []


def test_layout_is_final():
    for package in ("core", "ai", *MODULES, "web", "cli"):
        assert (SRC / package / "__init__.py").exists(), package


def test_every_module_file_has_a_docstring():
    missing = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if "migrations" not in p.parts
        and ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) is None
        and p.read_text(encoding="utf-8").strip()
    ]
    assert missing == []
