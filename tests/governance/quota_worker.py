"""One process of the multi-process quota test: N language-model calls of one tenant.

Run as ``python -m tests.governance.quota_worker DATABASE_URL MODEL_URL TENANT_ID CALLS NOW``;
prints ``admitted refused`` when done. ``NOW`` fixes the quota clock, so that every process
counts in the same minute however long the start takes.
"""

from __future__ import annotations

import sys

from rathaus.ai.llm import ChatMessage
from rathaus.ai.registry import get_language_model
from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.governance import quota
from rathaus.governance.gateway import model_context


def main(database_url: str, model_url: str, tenant_id: int, calls: int, now: float) -> None:
    quota.clock = lambda: now
    settings = load_settings(
        mode="demo",
        database_url=database_url,
        llm={"backend": "openai", "base_url": model_url, "location": "eigener_server",
             "max_retries": 0},
    )  # fmt: skip
    model = get_language_model(settings)
    assert model is not None
    db = Database(database_url)
    admitted = refused = 0
    for i in range(calls):
        with model_context(level="intern", tenant_id=tenant_id, database=db, actor="lasttest"):
            try:
                model.complete([ChatMessage("user", f"Frage {i}")])
                admitted += 1
            except quota.QuotaExceededError:
                refused += 1
    db.dispose()
    print(admitted, refused)


if __name__ == "__main__":
    url, server, tenant, n, at = sys.argv[1:6]
    main(url, server, int(tenant), int(n), float(at))
