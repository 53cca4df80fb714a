"""Schreibassistenz jobs: long transcriptions of recordings, with progress, cancellable."""

from __future__ import annotations
