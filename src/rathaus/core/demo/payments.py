"""An invented payment list of Musterstadt for the Buchungsprüfung demo.

About a year of payments to 24 invented suppliers, generated with a fixed seed and written as
the CSV a German finance system exports (semicolon, Windows-1252, ``31.12.2026``, ``1.471,60``).
A few irregularities are planted so the review queue has something to show: a payment entered
twice, an invoice paid again a few days later under a new number, an order split into parts
just under a procurement threshold, an amount far above a supplier's usual ones, a payment on a
public holiday, and a new supplier with a large first payment. All names are invented.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random

from rathaus.core.cases import is_working_day

FILENAME = "musterstadt-zahlungen.csv"
NAME = "Zahlungen Musterstadt (Demo)"

# supplier, category, unit, typical amount in euros, payments per month
SUPPLIERS = (
    ("Stadtwerke Musterstadt GmbH", "Energie", "Gebäudemanagement", 8400, 1),
    ("Büromarkt Lindner KG", "Bürobedarf", "Zentrale Dienste", 620, 3),
    ("Autohaus Brandt GmbH", "Fahrzeugunterhaltung", "Bauhof", 1350, 2),
    ("Streusalz Nord AG", "Streumittel", "Bauhof", 5600, 1),
    ("Gärtnerei Sommerfeld", "Grünpflege", "Umwelt und Grünflächen", 2100, 2),
    ("IT-Haus Weber GmbH", "IT-Dienstleistungen", "Zentrale Dienste", 3900, 2),
    ("Reinigungsdienst Klar OHG", "Gebäudereinigung", "Gebäudemanagement", 4700, 1),
    ("Druckerei Hoffmann", "Druckerzeugnisse", "Zentrale Dienste", 890, 2),
    ("Bauunternehmen Krüger GmbH", "Straßenunterhaltung", "Tiefbauamt", 12800, 1),
    ("Elektro Schulze", "Gebäudeunterhaltung", "Gebäudemanagement", 980, 3),
    ("Sanitär Becker GmbH", "Gebäudeunterhaltung", "Gebäudemanagement", 760, 2),
    ("Verlag Amtsblatt Musterstadt", "Bekanntmachungen", "Zentrale Dienste", 540, 2),
    ("Schulbedarf Meier", "Lehrmittel", "Schulen und Sport", 1150, 2),
    ("Sportgeräte Wagner GmbH", "Sportstätten", "Schulen und Sport", 2300, 1),
    ("Telekommunikation Süd AG", "Telefon und Netz", "Zentrale Dienste", 2650, 1),
    ("Ingenieurbüro Vogel", "Planungsleistungen", "Tiefbauamt", 7300, 1),
    ("Abfallwirtschaft Region GmbH", "Entsorgung", "Umwelt und Grünflächen", 9800, 1),
    ("Kanzlei Richter & Partner", "Rechtsberatung", "Zentrale Dienste", 1900, 1),
    ("Baustoffe Hartmann KG", "Baustoffe", "Bauhof", 1450, 3),
    ("Reifen Keller", "Fahrzeugunterhaltung", "Bauhof", 680, 2),
    ("Catering Rosengarten", "Bewirtung", "Bürgermeisteramt", 720, 1),
    ("Malerbetrieb Fuchs", "Gebäudeunterhaltung", "Gebäudemanagement", 2450, 1),
    ("Versicherung Kommunal VaG", "Versicherungen", "Kämmerei", 6100, 1),
    ("Wasserverband Mittelland", "Wasser und Abwasser", "Gebäudemanagement", 3300, 1),
)


def _working_day(day: dt.date) -> dt.date:
    while not is_working_day(day, "BW"):
        day += dt.timedelta(days=1)
    return day


def generate(today: dt.date, *, seed: int = 2026) -> bytes:
    """The demo payment list for the twelve months before ``today`` (CSV, Windows-1252)."""
    rng = random.Random(seed)
    start = today - dt.timedelta(days=365)
    rows: list[tuple[dt.date, str, str, str, int, str]] = []
    for supplier, category, unit, typical, per_month in SUPPLIERS:
        for month in range(12):
            for _ in range(per_month):
                day = _working_day(start + dt.timedelta(days=30 * month + rng.randint(0, 27)))
                cents = round(typical * rng.lognormvariate(0, 0.18) * 100)
                rows.append((day, supplier, category, unit, cents, ""))
    rows.sort()
    # Planted irregularities (see module docstring).
    d0 = _working_day(start + dt.timedelta(days=200))
    rows += [
        (rows[40][0], *rows[40][1:5], "same"),  # entered twice: same day, amount, reference
        (rows[90][0] + dt.timedelta(days=4), *rows[90][1:4], rows[90][4] + 100, "again"),
        (d0, "Baustoffe Hartmann KG", "Baustoffe", "Bauhof", 4_950_00, ""),
        (
            _working_day(d0 + dt.timedelta(days=2)),
            "Baustoffe Hartmann KG",
            "Baustoffe",
            "Bauhof",
            4_890_00,
            "",
        ),
        (
            _working_day(d0 + dt.timedelta(days=5)),
            "Baustoffe Hartmann KG",
            "Baustoffe",
            "Bauhof",
            4_975_00,
            "",
        ),
        (
            d0 + dt.timedelta(days=30),
            "Büromarkt Lindner KG",
            "Bürobedarf",
            "Zentrale Dienste",
            18_400_00,
            "",
        ),
        (
            _first_holiday(start, today),
            "Catering Rosengarten",
            "Bewirtung",
            "Bürgermeisteramt",
            690_00,
            "",
        ),
        (
            _working_day(today - dt.timedelta(days=20)),
            "Consulting Nordlicht UG",
            "Beratung",
            "Bürgermeisteramt",
            38_500_00,
            "",
        ),
    ]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(
        [
            "Buchungsdatum",
            "Kreditor",
            "Betrag",
            "Belegnummer",
            "Sachkonto",
            "Organisationseinheit",
            "Verwendungszweck",
        ]
    )
    numbers: dict[int, str] = {}
    for index, (day, supplier, category, unit, cents, marker) in enumerate(rows):
        number = numbers[40] if marker == "same" else f"RE-{day.year}-{10000 + index:05d}"
        numbers[index] = number
        euros = f"{cents // 100:,}".replace(",", ".") + f",{cents % 100:02d}"
        writer.writerow(
            [f"{day:%d.%m.%Y}", supplier, euros, number, category, unit, f"Rechnung {number}"]
        )
    return buffer.getvalue().encode("cp1252")


def _first_holiday(start: dt.date, end: dt.date) -> dt.date:
    import holidays

    days = sorted(d for y in {start.year, end.year} for d in holidays.Germany(subdiv="BW", years=y))
    return next((d for d in days if start < d < end and d.weekday() < 5), end)
