"""Rathaus – sovereign AI workbench for municipal administrations."""

__version__ = "0.1.0"
