"""Governance: decision record and audit trail, pseudonymisation gateway, AI register,
data protection, access control and the screening of untrusted input."""
