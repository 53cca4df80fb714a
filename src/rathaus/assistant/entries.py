"""What an importer hands to the knowledge base: one entry, independent of its source format."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

# Structured facts of a service page, in the order and with the labels they are shown.
FACTS: dict[str, str] = {
    "fees": "Gebühren",
    "required_documents": "Mitzubringen / Unterlagen",
    "office": "Zuständige Stelle",
    "address": "Adresse",
    "opening_hours": "Öffnungszeiten",
    "phone": "Telefon",
    "email": "E-Mail",
    "online_url": "Online-Dienst",
    "appointment_url": "Termin vereinbaren",
    "forms": "Formulare",
}
# Facts whose value is a list (of strings; ``forms`` of {"title", "url"}).
LIST_FACTS = frozenset({"required_documents", "forms"})


@dataclass
class EntryData:
    """One knowledge entry as parsed from a file, before it is stored.

    ``source`` names the importer or collection (``muenchen-dldb``, ``csv``, ``markdown`` …) and
    ``external_id`` the entry inside it (catalogue id, file name, URL). Together they are the
    identity of the entry: importing the same pair again updates it, never duplicates it.
    ``body`` is plain text; paragraphs are separated by a blank line and a line starting with
    ``## `` starts a section (its heading is kept with the passages below it).
    """

    source: str
    external_id: str
    title: str
    body: str = ""
    url: str = ""
    keywords: str = ""
    leika_key: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    language: str = "de"

    def content_sha256(self) -> str:
        """Hash of everything that is stored, so an unchanged re-import is recognised."""
        payload = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()
