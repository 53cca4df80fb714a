"""One process of the multi-process rate-limit test: N Open311 requests from one address.

Run as ``python -m tests.hardening.rate_worker DATABASE_URL DATA_DIR CALLS NOW``; prints
``admitted refused``. Each process builds its own app (as each uvicorn worker does); ``NOW``
fixes the limiter's clock, so every process counts in the same minute however long it starts.
"""

from __future__ import annotations

import sys

from fastapi.testclient import TestClient

from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.web.app import create_app
from rathaus.web.limits import RateLimiter


def main(database_url: str, data_dir: str, calls: int, now: float) -> None:
    settings = load_settings(
        mode="demo",
        data_dir=data_dir,
        database_url=database_url,
        default_tenant="alpha",
        queue={"backend": "memory"},
        limits={"open311_per_minute": 20},
    )
    db = Database(database_url)
    app = create_app(settings, database=db)
    app.state.rate_limiter = RateLimiter(
        db.engine, settings.secret_key.get_secret_value(), clock=lambda: now
    )
    admitted = refused = 0
    with TestClient(app) as client:
        for _ in range(calls):
            status = client.get("/open311/v2/services.json").status_code
            admitted += status == 200
            refused += status == 429
    db.dispose()
    print(admitted, refused)


if __name__ == "__main__":
    url, directory, n, at = sys.argv[1:5]
    main(url, directory, int(n), float(at))
