"""Docs that cannot drift: every setting and every CLI command is documented."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import BaseModel

from rathaus.cli import app
from rathaus.core.config import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _env_names(model: type[BaseModel], prefix: str = "RATHAUS_") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.extend(_env_names(annotation, f"{prefix}{name.upper()}__"))
        else:
            names.append(f"{prefix}{name.upper()}")
    return names


def _commands(group, prefix: str = "rathaus") -> list[str]:  # type: ignore[no-untyped-def]
    if getattr(group, "commands", None):
        found = []
        for name, sub in group.commands.items():
            found.extend(_commands(sub, f"{prefix} {name}"))
        return found
    return [prefix]


def test_every_setting_is_documented():
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    missing = [name for name in _env_names(Settings) if f"`{name}`" not in text]
    assert missing == []


def test_every_command_is_documented():
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    commands = _commands(typer.main.get_command(app))
    assert len(commands) >= 15
    missing = [c for c in commands if f"`{c}" not in text]
    assert missing == []
