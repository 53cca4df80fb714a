"""Pressemitteilungen, Briefe nach DIN 5008, Textbausteine und Übersetzung: Seiten und JSON-API."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
