"""German names of the languages Rathaus recognises or translates into, by ISO 639-1 code.

One table for every place that shows a language to staff: the summary's language note, the
translation targets, the assistant's gaps report."""

from __future__ import annotations

NAMES = {
    "de": "Deutsch",
    "en": "Englisch",
    "tr": "Türkisch",
    "ar": "Arabisch",
    "uk": "Ukrainisch",
    "ru": "Russisch",
    "pl": "Polnisch",
    "fr": "Französisch",
    "es": "Spanisch",
    "it": "Italienisch",
    "ro": "Rumänisch",
    "fa": "Persisch",
    "hr": "Kroatisch",
    "bg": "Bulgarisch",
    "el": "Griechisch",
}


def name_of(code: str | None) -> str:
    """The German name of ``code`` ("en" → "Englisch"); an unknown code as it is."""
    return NAMES.get(code or "", code or "")
