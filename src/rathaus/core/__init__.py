"""Core: settings, database, domain model and audit events shared by every module."""
