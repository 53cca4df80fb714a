"""Readers for the file formats of incoming items; ``rathaus.inbox.documents`` is the entry point."""
