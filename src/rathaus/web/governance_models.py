"""Governance: model locations, the policy per confidentiality level and refused calls."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
