"""Spracherkennung als Hintergrundauftrag: Hochladen, Fortschritt, Abbruch: Seiten und JSON-API."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
