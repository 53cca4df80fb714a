"""Governance: audit trail, pseudonymisation, AI register and data protection."""
