"""Bürgerassistent: answers citizens from the municipality's knowledge base, with sources."""
