"""Where an item is, as the routing model reads it: street, postcode, district and grid cells.

One set of one-hot string features (``{"strasse": "flurweg", "plz": "78464", "zelle_500m":
"…", "zelle_2km": "…"}``) for the live model (:func:`case_places`, from a case's coordinates and
address) and for the offline evaluation (:func:`rathaus.inbox.evaluation.location_features`).
What is not known is the stable value ``"unbekannt"`` (street, postcode, a given but empty
district); without coordinates the two grid cells are left out (no cell is switched on).
"""

from __future__ import annotations

import math
import re
from typing import Any

UNKNOWN = "unbekannt"

_HOUSE_NUMBER = re.compile(r"\s*\d+\s*[a-zA-Z]?$")
_POSTCODE = re.compile(r"\b(\d{5})\b")


def place_features(
    *,
    address: str | None = None,
    latitude: Any = None,
    longitude: Any = None,
    district: str | None = None,
) -> dict[str, str]:
    """Street (first part of the address before a comma, without house number, lower case),
    postcode (five digits anywhere in the address), the district when one is given (``None``:
    the source has none, so the feature is left out) and grid cells of about 0.5 and 2 km."""
    address = address or ""
    street = _HOUSE_NUMBER.sub("", address.split(",")[0]).strip().lower()
    postcode = _POSTCODE.search(address)
    features: dict[str, str] = {}
    if district is not None:
        features["stadtteil"] = district.strip() or UNKNOWN
    features["strasse"] = street or UNKNOWN
    features["plz"] = postcode.group(1) if postcode else UNKNOWN
    try:
        lat, lon = float(latitude), float(longitude)
    except (TypeError, ValueError):
        return features
    if math.isfinite(lat) and math.isfinite(lon):
        # ~0.5 km and ~2 km cells at the latitude of southern Germany.
        features["zelle_500m"] = f"{round(lat / 0.0045)}_{round(lon / 0.0067)}"
        features["zelle_2km"] = f"{round(lat / 0.018)}_{round(lon / 0.027)}"
    return features


def case_places(case: Any, *, address: str | None = None) -> dict[str, str]:
    """The place features of a case (anything with ``address``, ``latitude``, ``longitude``):
    its coordinates (Open311, API) and its address (given on receipt, or the first address
    found in the text, which triage stores in ``Case.address``). ``address`` replaces the
    case's own, for an item whose fields are not stored yet. Cases carry no district."""
    return place_features(
        address=case.address if address is None else address,
        latitude=case.latitude,
        longitude=case.longitude,
    )
