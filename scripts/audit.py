"""Dependency audit: pip-audit over the installed dependencies of this virtualenv (``make audit``).

Rathaus itself (installed editable) is skipped. Known vulnerabilities that were assessed may be
ignored only through the table between the ``audit-ignore`` markers in ``docs/security.md``, each
with a reason. pip-audit runs with ``--strict``: a dependency that could not be checked is a
failure, never a silent pass.

Before the audit the script checks that pip-audit's data source (the per-version JSON of the
package index, which carries the known vulnerabilities) is reachable, so that a blocked network
gives a clear message instead of pip-audit's misleading "not found on PyPI".

Exit codes: 0 no known vulnerability; 1 vulnerabilities found (or the audit failed);
2 the vulnerability data cannot be reached (with ``--unreachable warn``: 0 and a warning).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECURITY_DOC = ROOT / "docs" / "security.md"
START, END = "<!-- audit-ignore:start -->", "<!-- audit-ignore:end -->"
VULN_ID = re.compile(r"^(?:PYSEC|GHSA|CVE|OSV)-[A-Za-z0-9-]+$")
INDEX = "https://pypi.org/pypi/{name}/{version}/json"


def ignored_vulnerabilities(doc: Path = SECURITY_DOC) -> list[str]:
    """The ids in the documented ignore table; every row needs a package and a reason."""
    text = doc.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{doc}: die Markierungen {START} und {END} fehlen.")
    table = text.split(START, 1)[1].split(END, 1)[0]
    ids: list[str] = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not VULN_ID.match(cells[0].strip("`")):
            continue
        if not cells[1] or not cells[2]:
            raise SystemExit(f"{doc}: {cells[0]} braucht Paket und Begründung.")
        ids.append(cells[0].strip("`"))
    return ids


def probe(timeout_s: float = 20.0) -> str | None:
    """``None`` if the vulnerability data is reachable, else why not (German)."""
    # httpx: a dependency of Rathaus that always comes from the index in this exact version.
    url = INDEX.format(name="httpx", version=importlib.metadata.version("httpx"))
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - fixed URL
            if b'"vulnerabilities"' in response.read():
                return None
            return f"{url} antwortet ohne das Feld „vulnerabilities“"
    except urllib.error.HTTPError as exc:
        return f"{url} antwortet mit HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{url} ist nicht erreichbar ({reason})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--unreachable",
        choices=("fail", "warn"),
        default="fail",
        help="Was gilt, wenn die Schwachstellendaten nicht erreichbar sind (Standard: fail).",
    )
    args = parser.parse_args(argv)
    ignored = ignored_vulnerabilities()
    problem = probe()
    if problem is not None:
        print(
            "Abhängigkeitsprüfung (pip-audit) NICHT durchgeführt: die Schwachstellendaten sind "
            f"von diesem Rechner aus nicht erreichbar: {problem}. pip-audit fragt je installiertem "
            "Paket https://pypi.org/pypi/<paket>/<version>/json ab (oder api.osv.dev); ohne diese "
            "Antworten lässt sich nichts über bekannte Schwachstellen sagen. Bitte auf einem "
            "Rechner mit Zugang zu pypi.org ausführen: make audit (siehe docs/security.md).",
            file=sys.stderr,
        )
        return 0 if args.unreachable == "warn" else 2
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--strict",
        "--skip-editable",
        "--progress-spinner",
        "off",
        "--vulnerability-service",
        "pypi",
    ]
    for vuln in ignored:
        command += ["--ignore-vuln", vuln]
    print("Abhängigkeitsprüfung:", " ".join(command[1:]), flush=True)
    result = subprocess.run(command, check=False)  # noqa: S603 - our own fixed command
    if result.returncode != 0:
        print(
            "Abhängigkeitsprüfung fehlgeschlagen: bekannte Schwachstellen oder nicht prüfbare "
            "Pakete (Ausgabe oben). Bitte die Pakete aktualisieren oder eine bewertete Ausnahme "
            "mit Begründung in docs/security.md eintragen.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
