"""Datenschutz pages: retention rules, Art. 15/17 requests and the access log."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
