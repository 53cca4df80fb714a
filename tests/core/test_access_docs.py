"""docs/access-control.md shows the role × permission table exactly as core/roles.py defines it."""

from __future__ import annotations

from pathlib import Path

from rathaus.core.roles import PERMISSIONS, ROLE_LABELS, Permission, Role

DOC = Path(__file__).resolve().parents[2] / "docs" / "access-control.md"


def test_permission_table_matches_the_code() -> None:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    header = next(line for line in lines if line.startswith("| Berechtigung |"))
    columns = [c.strip() for c in header.strip("|").split("|")][1:]
    labels = {label: role for role, label in ROLE_LABELS.items()}
    assert sorted(columns) == sorted(ROLE_LABELS.values())
    rows = {}
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == len(columns) + 1 and cells[0].startswith("`"):
            rows[Permission(cells[0].strip("`"))] = cells[1:]
    assert set(rows) == set(Permission)
    for permission, marks in rows.items():
        for label, mark in zip(columns, marks, strict=True):
            role: Role = labels[label]
            assert (mark == "✓") == (permission in PERMISSIONS[role]), (permission, label)
