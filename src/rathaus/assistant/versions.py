"""The version history of knowledge entries: the content before each change, and its diff.

Every change of an entry's content calls :func:`record` *before* the new values are set: the
Redaktion's save and a restore (both :mod:`rathaus.assistant.editorial`) and a re-import whose
content differs (:func:`rathaus.assistant.knowledge.upsert_entries`). A change that alters none
of :data:`CONTENT_FIELDS` writes no version. Only the newest :data:`KEEP_VERSIONS` versions of an
entry are kept, so a nightly re-import of a changing catalogue cannot grow the table without
bound; older ones are deleted when a new one is written. Versions go with their entry.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from rathaus.assistant.entries import FACTS
from rathaus.core.errors import NotFoundError
from rathaus.core.models import KnowledgeEntry, KnowledgeEntryVersion, utcnow

KEEP_VERSIONS = 50
# The editable content a version holds and a restore puts back.
CONTENT_FIELDS = ("title", "url", "body", "keywords", "facts", "is_published", "language")
FIELD_LABELS = {
    "title": "Titel",
    "url": "Quelle (URL)",
    "body": "Text",
    "keywords": "Stichwörter",
    "facts": "Angaben",
    "is_published": "Veröffentlicht",
    "language": "Sprache",
}
REASONS = ("bearbeitet", "import", "wiederhergestellt")
REASON_LABELS = {
    "bearbeitet": "bearbeitet",
    "import": "Import",
    "wiederhergestellt": "wiederhergestellt",
}
DIFF_CONTEXT = 3  # unchanged lines shown around each change


def content_of(row: KnowledgeEntry | KnowledgeEntryVersion) -> dict[str, Any]:
    """The editable content of an entry or a version, as plain values."""
    content = {key: getattr(row, key) for key in CONTENT_FIELDS}
    content["facts"] = dict(content["facts"] or {})
    return content


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The fields of :data:`CONTENT_FIELDS` in ``after`` whose value differs from ``before``,
    in that order; a changed structured fact is named ``facts.<key>`` (``facts.fees``)."""
    changed: list[str] = []
    for key in CONTENT_FIELDS:
        if key not in after or after[key] == before.get(key):
            continue
        if key == "facts":
            old, new = before.get(key) or {}, after[key] or {}
            keys = [k for k in (*FACTS, *sorted(set(old) | set(new))) if old.get(k) != new.get(k)]
            changed.extend(f"facts.{k}" for k in dict.fromkeys(keys))
        else:
            changed.append(key)
    return changed


def field_label(name: str) -> str:
    """``body`` → „Text“, ``facts.fees`` → „Gebühren“."""
    if name.startswith("facts."):
        key = name.removeprefix("facts.")
        return FACTS.get(key, key)
    return FIELD_LABELS.get(name, name)


def record(
    session: Session,
    *,
    entry: KnowledgeEntry,
    after: Mapping[str, Any],
    changed_by: str,
    reason: str,
) -> KnowledgeEntryVersion | None:
    """Keep the entry's content as a new version before ``after`` replaces it; None (nothing
    written) when ``after`` changes none of :data:`CONTENT_FIELDS`.

    Call it before setting the new values. The entry's row is locked (PostgreSQL; SQLite has
    one writer anyway), so two changes at once number their versions one after the other.
    """
    if reason not in REASONS:
        raise ValueError(f"unknown reason {reason!r}")
    before = content_of(entry)
    fields = changed_fields(before, after)
    if not fields:
        return None
    session.execute(
        select(KnowledgeEntry.id).where(KnowledgeEntry.id == entry.id).with_for_update()
    )
    newest = session.scalar(
        select(func.max(KnowledgeEntryVersion.number)).where(
            KnowledgeEntryVersion.entry_id == entry.id
        )
    )
    number = int(newest or 0) + 1
    version = KnowledgeEntryVersion(
        tenant_id=entry.tenant_id,
        entry_id=entry.id,
        number=number,
        last_verified_at=entry.last_verified_at,
        verified_by=entry.verified_by or "",
        changed_fields=fields,
        reason=reason,
        changed_by=changed_by[:200],
        created_at=utcnow(),
        **before,
    )
    session.add(version)
    session.flush()
    session.execute(
        delete(KnowledgeEntryVersion)
        .where(
            KnowledgeEntryVersion.entry_id == entry.id,
            KnowledgeEntryVersion.number <= number - KEEP_VERSIONS,
        )
        .execution_options(synchronize_session=False)
    )
    return version


def list_versions(
    session: Session, *, tenant_id: int, entry_id: int
) -> list[KnowledgeEntryVersion]:
    """The entry's versions, newest first (the entry must belong to the tenant)."""
    return list(
        session.scalars(
            select(KnowledgeEntryVersion)
            .where(
                KnowledgeEntryVersion.tenant_id == tenant_id,
                KnowledgeEntryVersion.entry_id == entry_id,
            )
            .order_by(KnowledgeEntryVersion.number.desc())
            .limit(KEEP_VERSIONS)
        )
    )


def get_version(
    session: Session, *, tenant_id: int, entry_id: int, version_id: int
) -> KnowledgeEntryVersion:
    """The version, if it is one of the tenant's entry ``entry_id``; else :class:`NotFoundError`."""
    version = session.get(KnowledgeEntryVersion, version_id)
    if version is None or version.tenant_id != tenant_id or version.entry_id != entry_id:
        raise NotFoundError(
            f"Die Version {version_id} des Wissenseintrags {entry_id} gibt es nicht "
            "(mehr). Ältere Versionen werden nach der fünfzigsten gelöscht."
        )
    return version


# -- comparing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiffLine:
    """One line of a body diff: ``kind`` is ``gleich`` (in both), ``alt`` (only in the version),
    ``neu`` (only in the current text) or ``auslassung`` (``text`` counts unchanged lines left
    out)."""

    kind: str
    text: str


def body_diff(old: str, new: str, *, context: int = DIFF_CONTEXT) -> list[DiffLine]:
    """A line diff of ``old`` (a version's body) against ``new`` (the current body), with
    ``context`` unchanged lines around each change; empty when the texts are equal. Lines are
    plain text: the template escapes them."""
    if old == new:
        return []
    old_lines, new_lines = old.splitlines(), new.splitlines()
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    lines: list[DiffLine] = []
    shown_until = 0  # old-text lines before this index are accounted for
    for group in matcher.get_grouped_opcodes(context):
        first = group[0][1]
        if first > shown_until:
            lines.append(DiffLine("auslassung", str(first - shown_until)))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines.extend(DiffLine("gleich", line) for line in old_lines[i1:i2])
                continue
            lines.extend(DiffLine("alt", line) for line in old_lines[i1:i2])
            lines.extend(DiffLine("neu", line) for line in new_lines[j1:j2])
        shown_until = group[-1][2]
    if lines and shown_until < len(old_lines):
        lines.append(DiffLine("auslassung", str(len(old_lines) - shown_until)))
    return lines


@dataclass(frozen=True)
class FieldChange:
    """A field other than the body that differs between a version and the current entry."""

    label: str
    version: str
    current: str


def _shown(name: str, value: Any) -> str:
    if name == "is_published":
        return "ja" if value else "nein"
    if isinstance(value, list):
        return "\n".join(
            f"{v.get('title', '')} | {v.get('url', '')}" if isinstance(v, Mapping) else str(v)
            for v in value
        )
    return "" if value is None else str(value)


def field_changes(version: KnowledgeEntryVersion, entry: KnowledgeEntry) -> list[FieldChange]:
    """The fields besides the body in which ``version`` differs from the current entry."""
    old, new = content_of(version), content_of(entry)
    changes = []
    for name in changed_fields(old, new):
        if name == "body":
            continue
        if name.startswith("facts."):
            key = name.removeprefix("facts.")
            before, after = old["facts"].get(key), new["facts"].get(key)
        else:
            before, after = old[name], new[name]
        changes.append(FieldChange(field_label(name), _shown(name, before), _shown(name, after)))
    return changes
