"""Numbers as German readers write them, for pages and command output alike."""

from __future__ import annotations

from typing import Any


def german_number(value: Any, digits: int = 1) -> str:
    """A decimal number as German readers write it: "1.234,5" (comma for the decimals, a
    point between thousands); "–" for no value."""
    if value is None:
        return "–"
    text = f"{float(value):,.{digits}f}"
    return text.replace(",", "\u2009").replace(".", ",").replace("\u2009", ".")


def german_percent(share: Any, digits: int = 1) -> str:
    """A share (0.871) as a German percentage: "87,1 %"; "–" for no value."""
    if share is None:
        return "–"
    return f"{german_number(float(share) * 100, digits)} %"
