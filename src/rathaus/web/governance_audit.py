"""Governance pages: overview, audit log (with chain check and export) and the decision
record of AI suggestions. (Owned by the audit work package.)"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
