"""The KI-Register for staff and the public transparency page for citizens."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
