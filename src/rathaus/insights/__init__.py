"""Lagebild: dashboards, forecasts, process mining, booking checks and winter routes."""
