"""Web: the FastAPI app, staff login, and the server-rendered German UI (Jinja2 + HTMX)."""
