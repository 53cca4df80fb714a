"""Niederschriften: Tagesordnung (OParl), Aufnahme oder Transkript, Ergebnis und Export: Seiten und JSON-API."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
