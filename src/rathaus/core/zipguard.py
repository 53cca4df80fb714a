"""ZIP archives from outside (DOCX, XLSX) checked before anything is unpacked (ZIP bombs).

Python's :mod:`zipfile` never returns more bytes for a member than the size the central
directory declares for it (a member that would unpack to more fails its CRC check instead), so
the declared sizes bound what every reader built on :mod:`zipfile` (our DOCX reader, openpyxl)
can unpack. Checking them, the number of members and each member's compression ratio before the
first member is opened refuses a ZIP bomb in microseconds, whatever library reads it next.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class ZipBounds:
    """What one archive may unpack to.

    - ``max_members``: more members are refused (also the cost of reading the directory).
    - ``max_unzipped_bytes``: the declared sizes of all members together.
    - ``max_ratio``: a member over 1 MB that is compressed better than this is refused;
      ordinary office files reach 10 to 30, a bomb of zeros about 1000.
    """

    max_members: int = 2000
    max_unzipped_bytes: int = 100 * MB
    max_ratio: float = 100.0


def bomb_reason(archive: zipfile.ZipFile, bounds: ZipBounds) -> str | None:
    """``None`` when ``archive`` stays within ``bounds``, else why not (German, one clause)."""
    infos = archive.infolist()
    if len(infos) > bounds.max_members:
        return f"mehr als {bounds.max_members} Bestandteile"
    declared = sum(info.file_size for info in infos)
    if declared > bounds.max_unzipped_bytes:
        return f"entpackt mehr als {bounds.max_unzipped_bytes // MB} MB"
    for info in infos:
        if info.file_size > MB and info.file_size > bounds.max_ratio * max(1, info.compress_size):
            return f"ein Bestandteil ist mehr als {bounds.max_ratio:g}-fach verdichtet"
    return None
