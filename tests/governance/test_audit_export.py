"""Signed export of the audit log (JSON Lines and CSV) and its check, as functions and as
the real ``rathaus audit`` commands."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import select, update

from rathaus.core import audit
from rathaus.core.db import Database
from rathaus.core.errors import RathausError
from rathaus.core.models import AuditEvent, Tenant
from rathaus.governance import audit_log
from rathaus.governance.audit_log import AuditExportError, Period, check_export, export_to_file
from tests.factories import build_tenant
from tests.governance.test_audit_chain import attacker
from tests.test_cli import run

SECRET = "ein-geheimer-schluessel-nur-fuer-diesen-test"


def _events(db: Database) -> dict[str, int]:
    """Two tenants and the system chain; alpha has awkward values (CSV formulas, quotes,
    semicolons, line breaks, non-ASCII) and entries on two days."""
    with db.session() as session:
        alpha = build_tenant(session, "alpha").tenant
        beta = build_tenant(session, "beta").tenant
        day1 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
        day2 = dt.datetime(2026, 3, 5, 12, 0, tzinfo=dt.UTC)
        for i, (actor, subject) in enumerate(
            [
                ('=HYPERLINK("x")', "'zitiert"),
                ("-1", 'mit "Anführungszeichen"; und Semikolon'),
                ("admin", "Zeile 1\nZeile 2 äöüß €"),
            ]
        ):
            audit.record(
                session,
                audit.Event(
                    kind="test",
                    actor=actor,
                    tenant_id=alpha.id,
                    subject=subject,
                    data={"i": i, "nested": {"b": [1, 2.5, None, True]}, "text": "@x"},
                    at=day1 if i < 2 else day2,
                ),
            )
        audit.record(session, audit.Event(kind="login", actor="b", tenant_id=beta.id))
        audit.record(session, audit.Event(kind="db_upgrade", actor="cli"))
        return {"alpha": alpha.id, "beta": beta.id}


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_roundtrip_and_tampering(db: Database, tmp_path: Path, fmt: str) -> None:
    tenants = _events(db)
    path = tmp_path / f"protokoll.{fmt}"
    with db.session() as session:
        alpha = session.get(Tenant, tenants["alpha"])
        sig = export_to_file(session, path, fmt=fmt, tenant=alpha, secret_key=SECRET)
    assert sig["rows"] == 3 and sig["tenant"] == "alpha" and sig["algorithm"] == "HMAC-SHA256"
    assert set(sig["chains"]) == {str(tenants["alpha"])}
    assert sig["chains"][str(tenants["alpha"])]["first_prev_hash"] == audit.GENESIS
    result = check_export(path, secret_key=SECRET)
    assert result.rows == 3 and result.signature_checked and result.complete_from_start
    # Rows read back are exactly what was hashed (CSV escaping undone).
    rows = list(audit_log.read_rows(path, fmt))
    assert [r["actor"] for r in rows] == ['=HYPERLINK("x")', "-1", "admin"]
    assert rows[0]["subject"] == "'zitiert" and rows[2]["subject"] == "Zeile 1\nZeile 2 äöüß €"
    if fmt == "csv":
        raw = path.read_text(encoding="utf-8-sig")
        assert ';"\'=HYPERLINK(""x"")";' in raw and ";''zitiert;" in raw and ";'-1;" in raw

    with pytest.raises(AuditExportError, match="anderen Installation"):
        check_export(path, secret_key="falscher-schluessel")
    assert check_export(path, secret_key=None).signature_checked is False

    original = path.read_bytes()
    path.write_bytes(original.replace(b"admin", b"admen"))
    with pytest.raises(AuditExportError, match="SHA-256 stimmt nicht"):
        check_export(path, secret_key=SECRET)
    # Without the key, someone can re-sign a changed file; the chain still gives it away.
    signed = json.loads(audit_log.signature_path(path).read_text(encoding="utf-8"))
    signed["file_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    audit_log.signature_path(path).write_text(json.dumps(signed), encoding="utf-8")
    with pytest.raises(AuditExportError, match="Signatur ist ungültig"):
        check_export(path, secret_key=SECRET)
    with pytest.raises(AuditExportError, match="Hash passt nicht zum Inhalt"):
        check_export(path, secret_key=None)


def test_whole_installation_and_period_excerpt(db: Database, tmp_path: Path) -> None:
    tenants = _events(db)
    path = tmp_path / "alles.jsonl"
    with db.session() as session:
        sig = export_to_file(session, path, fmt="jsonl", tenant=None, secret_key=SECRET)
    assert sig["rows"] == 5 and set(sig["chains"]) == {
        str(tenants["alpha"]),
        str(tenants["beta"]),
        "system",
    }
    assert check_export(path, secret_key=SECRET).chains["system"] == 1
    # Only 5 March (local days): the excerpt starts inside the chain, and says so.
    excerpt = tmp_path / "maerz.jsonl"
    with db.session() as session:
        alpha = session.get(Tenant, tenants["alpha"])
        period = Period.parse("2026-03-05", "05.03.2026")
        sig = export_to_file(
            session, excerpt, fmt="jsonl", tenant=alpha, period=period, secret_key=SECRET
        )
    assert sig["rows"] == 1 and sig["period"] == {"from": "2026-03-05", "to": "2026-03-05"}
    result = check_export(excerpt, secret_key=SECRET)
    assert result.rows == 1 and not result.complete_from_start
    # A row removed from the middle of an export is found even with a valid file hash.
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:1] + lines[2:]), encoding="utf-8")
    signed = json.loads(audit_log.signature_path(path).read_text(encoding="utf-8"))
    signed["file_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    audit_log.signature_path(path).write_text(json.dumps(signed), encoding="utf-8")
    with pytest.raises(AuditExportError, match="Verkettung ist unterbrochen"):
        check_export(path, secret_key=None)


def test_bad_input_gets_german_errors(tmp_path: Path) -> None:
    with pytest.raises(RathausError, match="kein gültiges Datum"):
        Period.parse("31.02.2026", None)
    with pytest.raises(RathausError, match="Beginn liegt nach dem Ende"):
        Period.parse("2026-03-02", "2026-03-01")
    missing = tmp_path / "x.jsonl"
    with pytest.raises(AuditExportError, match="gibt es nicht"):
        check_export(missing, secret_key=None)
    missing.write_text("{}\n", encoding="utf-8")
    with pytest.raises(AuditExportError, match="Signaturdatei x.jsonl.sig fehlt"):
        check_export(missing, secret_key=None)
    audit_log.signature_path(missing).write_text("kein json", encoding="utf-8")
    with pytest.raises(AuditExportError, match="kein gültiges JSON"):
        check_export(missing, secret_key=None)


# -- the commands ------------------------------------------------------------------------------


def _cli(db: Database, tmp_path: Path, *args: str, secret: str = SECRET):  # type: ignore[no-untyped-def]
    return run(list(args), tmp_path, RATHAUS_DATABASE_URL=db.url, RATHAUS_SECRET_KEY=secret)


def test_cli_verify_export_and_check(db: Database, tmp_path: Path) -> None:
    tenants = _events(db)
    ok = _cli(db, tmp_path, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "Mandant alpha (Stadt Alpha): 3 Einträge geprüft – Kette intakt." in ok.stdout
    assert "Mandant beta (Stadt Beta): 1 Einträge geprüft" in ok.stdout
    assert "Systemkette (ohne Mandant): 1 Einträge geprüft" in ok.stdout

    out = tmp_path / "export" / "alpha.csv"
    exported = _cli(
        db, tmp_path, "audit", "export", "--format", "csv", "--ausgabe", str(out),
        "--mandant", "alpha", "--von", "2026-03-01",
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert "3 Einträge aus 1 Kette(n)" in exported.stdout and out.with_suffix(".csv.sig").is_file()
    checked = _cli(db, tmp_path, "audit", "export-pruefen", str(out))
    assert checked.returncode == 0, checked.stderr
    assert (
        "3 Einträge, Kette unversehrt" in checked.stdout
        and "Signatur (HMAC-SHA256) gültig" in checked.stdout
    )

    other_key = _cli(db, tmp_path, "audit", "export-pruefen", str(out), secret="anderer-schluessel")
    assert other_key.returncode == 1 and "Signatur ist ungültig" in other_key.stderr
    chain_only = _cli(
        db, tmp_path, "audit", "export-pruefen", str(out), "--nur-kette", secret="anderer"
    )
    assert chain_only.returncode == 0 and "NICHT geprüft" in chain_only.stdout

    bad = _cli(db, tmp_path, "audit", "export", "--format", "xml", "--ausgabe", str(out))
    assert bad.returncode == 1 and "Unbekanntes Format „xml“" in bad.stderr
    unknown = _cli(db, tmp_path, "audit", "verify", "--mandant", "gibtsnicht")
    assert unknown.returncode == 1 and "gibt es in dieser Installation nicht" in unknown.stderr

    with db.session() as session:
        target = session.scalars(
            select(AuditEvent.id)
            .where(AuditEvent.tenant_id == tenants["alpha"])
            .order_by(AuditEvent.id)
        ).all()[1]
    with attacker(db), db.engine.begin() as conn:
        conn.execute(update(AuditEvent).where(AuditEvent.id == target).values(actor="niemand"))
    broken = _cli(db, tmp_path, "audit", "verify")
    assert broken.returncode == 1
    assert (
        "Mandant alpha (Stadt Alpha): Kette GEBROCHEN nach 1 intakten Einträgen." in broken.stdout
    )
    assert f"Erster gebrochener Eintrag: Nr. {target} (Position 2 der Kette)" in broken.stdout
    assert "Inhalt verändert" in broken.stdout and "„niemand“" in broken.stdout
    assert "1 von 3 Ketten sind gebrochen" in broken.stderr
    only_beta = _cli(db, tmp_path, "audit", "verify", "--mandant", "beta", "--json")
    assert only_beta.returncode == 0 and json.loads(only_beta.stdout)[0]["ok"] is True


def test_third_party_snippet_in_the_docs_checks_an_export(db: Database, tmp_path: Path) -> None:
    """docs/audit.md shows how to recheck an export without Rathaus and without the secret;
    the snippet is run here as written, on a real export and on a tampered copy."""
    import os
    import subprocess
    import sys

    doc = (Path(__file__).resolve().parents[2] / "docs" / "audit.md").read_text(encoding="utf-8")
    snippet = doc.split("```python\n", 1)[1].split("```", 1)[0]
    _events(db)
    with db.session() as session:
        export_to_file(session, tmp_path / "protokoll.jsonl", fmt="jsonl", tenant=None,
                       secret_key=SECRET)  # fmt: skip
    script = tmp_path / "pruefen.py"
    script.write_text(snippet, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATHAUS_")}

    def check():  # type: ignore[no-untyped-def]
        return subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, env=env
        )

    ok = check()
    assert ok.returncode == 0 and "3 Ketten unversehrt" in ok.stdout, ok.stderr
    export = tmp_path / "protokoll.jsonl"
    export.write_text(export.read_text(encoding="utf-8").replace("äöüß", "aous"), encoding="utf-8")
    tampered = check()
    assert tampered.returncode == 1 and "verändert" in tampered.stderr
