"""German numbers, shared by the pages (`zahl` filter) and the command output."""

from __future__ import annotations

from rathaus.core.numbers import german_number, german_percent


def test_german_number_and_percent() -> None:
    assert german_number(1234.5) == "1.234,5"
    assert german_number(22.2, 2) == "22,20"
    assert german_number(-1234.56, 2) == "-1.234,56"
    assert german_number(None) == "–"
    assert german_percent(0.871) == "87,1 %"
    assert german_percent(1) == "100,0 %"
    assert german_percent(0.6383, 2) == "63,83 %"
    assert german_percent(None) == "–"
