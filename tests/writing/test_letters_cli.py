"""`rathaus text brief|pressemitteilung|uebersetzen|bausteine`, run as a real process."""

from __future__ import annotations

import io

from pypdf import PdfReader

from rathaus.writing import templates as tb
from tests.factories import build_tenant
from tests.test_cli import run
from tests.writing.test_press_release import KEY_POINTS


def test_cli_commands(sqlite_db, tmp_path):
    with sqlite_db.session() as session:
        world = build_tenant(session, "alpha")
        tb.seed_demo(session, world.tenant)
        reference = world.cases["BA"].reference
    env = {"RATHAUS_DATABASE_URL": sqlite_db.url, "RATHAUS_DEFAULT_TENANT": "alpha"}

    listed = run(["text", "bausteine", "liste"], tmp_path, **env)
    assert listed.returncode == 0, listed.stderr
    assert "Eingangsbestätigung" in listed.stdout

    body = tmp_path / "baustein.txt"
    body.write_text("Guten Tag, {{aktenzeichen}}", encoding="utf-8")
    made = run(
        ["text", "bausteine", "neu", "--name", "Kurz", "--datei", str(body)], tmp_path, **env
    )
    assert made.returncode == 0 and "angelegt" in made.stdout
    body.write_text("{{kaputt", encoding="utf-8")
    bad = run(["text", "bausteine", "neu", "--name", "X", "--datei", str(body)], tmp_path, **env)
    assert bad.returncode == 2 and "nicht geschlossen" in bad.stderr
    shown = run(["text", "bausteine", "anzeigen", "Kurz"], tmp_path, **env)
    assert "Platzhalter: aktenzeichen" in shown.stdout

    out = tmp_path / "brief.pdf"
    letter = run(
        ["text", "brief", "--baustein", "Eingangsbestätigung", "--vorgang", reference,
         "--pdf", str(out), "--empfaenger", "Jörg Müller", "--anschrift", "Weg 1, 12345 Ort"],
        tmp_path, **env,
    )  # fmt: skip
    assert letter.returncode == 0, letter.stderr
    assert reference in PdfReader(io.BytesIO(out.read_bytes())).pages[0].extract_text()
    missing = run(
        ["text", "brief", "--baustein", "Gibtsnicht", "--vorgang", reference], tmp_path, **env
    )
    assert missing.returncode == 2 and "gibt es nicht" in missing.stderr

    points = tmp_path / "stichpunkte.txt"
    points.write_text(KEY_POINTS, encoding="utf-8")
    pm = run(["text", "pressemitteilung", "--stichpunkte", str(points), "--json"], tmp_path, **env)
    assert pm.returncode == 0, pm.stderr
    assert '"headline": "Glasfaserausbau in Musterstadt startet"' in pm.stdout

    refused = run(["text", "uebersetzen", str(points), "--nach", "en"], tmp_path, **env)
    assert refused.returncode == 2 and "nicht zuverlässig" in refused.stderr
