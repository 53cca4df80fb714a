"""The app factory: settings in, FastAPI app out; nothing heavy is imported here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

import rathaus
from rathaus.core.config import Settings, load_settings
from rathaus.core.db import Database
from rathaus.core.errors import NotFoundError, PermissionDeniedError, RathausError
from rathaus.core.logging import REQUEST_ID_HEADER, current_request_id
from rathaus.core.security import EXPIRED, IDLE, SESSION_COOKIE
from rathaus.web import (
    account_sessions,
    api,
    assistant_api,
    assistant_views,
    auth_views,
    cookies,
    db_outage,
    governance_audit,
    governance_models,
    governance_privacy,
    governance_register,
    health,
    inbox_admin,
    inbox_api,
    inbox_sources,
    inbox_views,
    insights_bookings,
    insights_forecast,
    insights_process,
    insights_views,
    insights_winter,
    knowledge_views,
    limits,
    observability,
    oidc,
    open311,
    pages,
    second_factor,
    second_factor_login,
    system,
    writing_letters,
    writing_minutes,
    writing_plain,
    writing_speech,
    writing_summaries,
    writing_views,
)
from rathaus.web.deps import CsrfFailed, Forbidden, LoginRequired
from rathaus.web.templating import STATIC_DIR, render
from rathaus.web.writing_auth import WritingUnauthorized

log = logging.getLogger(__name__)

SWAGGER_DIR = STATIC_DIR / "vendor" / "swagger-ui"


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return (
        path.startswith(("/api/", "/open311/"))
        or "application/json" in request.headers.get("accept", "").split(",")[0]
    )


def _error(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    return render(request, "error.html", {"status": status, "message": message}, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        idle = exc.reason == IDLE
        response: Response
        if _wants_json(request):
            detail = auth_views.IDLE_MESSAGE if idle else "Bitte melden Sie sich an."
            response = JSONResponse({"detail": detail}, status_code=401)
        else:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            from urllib.parse import quote

            extra = "&grund=inaktiv" if idle else ""
            response = RedirectResponse(
                f"/login?next={quote(target, safe='')}{extra}", status_code=303
            )
        if exc.reason in (IDLE, EXPIRED):
            cookies.delete_cookie(response, request.app.state.settings, SESSION_COOKIE)
        return response

    @app.exception_handler(WritingUnauthorized)
    async def writing_unauthorized(_request: Request, exc: WritingUnauthorized) -> Response:
        return exc.response()

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return _error(request, 403, exc.message)

    @app.exception_handler(PermissionDeniedError)
    async def denied(request: Request, exc: PermissionDeniedError) -> Response:
        return _error(request, 403, exc.message)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, _exc: CsrfFailed) -> Response:
        return _error(
            request,
            403,
            "Die Sicherheitsprüfung (CSRF) ist fehlgeschlagen. Bitte laden Sie die Seite neu "
            "und versuchen Sie es noch einmal.",
        )

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> Response:
        return _error(request, 404, exc.message)

    @app.exception_handler(RathausError)
    async def rathaus_error(request: Request, exc: RathausError) -> Response:
        status = getattr(exc, "http_status", 400)
        return _error(request, status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        fields = ", ".join(
            ".".join(str(p) for p in e["loc"][1:]) or "Anfrage" for e in exc.errors()
        )
        message = f"Die Anfrage ist unvollständig oder fehlerhaft (Feld: {fields})."
        if _wants_json(request):
            return JSONResponse(
                {"detail": message, "errors": jsonable_errors(exc)}, status_code=422
            )
        return _error(request, 422, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        messages = {
            404: "Diese Seite gibt es nicht.",
            405: "Diese Aktion ist hier nicht möglich.",
        }
        message = messages.get(exc.status_code) or german_detail(str(exc.detail))
        response = _error(request, exc.status_code, message)
        response.headers.update(exc.headers or {})  # Retry-After of a 429, Allow of a 405
        return response

    db_outage.install(app, _error)  # a database outage is a German 503, not a 500

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def out_of_range(request: Request, _exc: Exception) -> Response:
        # A number the database cannot store (an id like 10**30): bad input, not a fault.
        return _error(
            request,
            400,
            "Die Anfrage enthält eine Zahl oder einen Wert, den die Datenbank nicht speichern "
            "kann. Bitte die Eingabe prüfen.",
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("Unerwarteter Fehler bei %s %s", request.method, request.url.path)
        request_id = current_request_id()
        response = _error(
            request,
            500,
            "Ein unerwarteter Fehler ist aufgetreten. Ihre Daten sind gespeichert; bitte "
            "versuchen Sie es erneut oder wenden Sie sich an die IT"
            + (f" (Fehlerkennung {request_id})." if request_id else "."),
        )
        if request_id:  # this response bypasses the request-id middleware (observability.py)
            response.headers[REQUEST_ID_HEADER] = request_id
        set_security_headers(request, response, request.app.state.settings)  # and that one too
        return response


# What FastAPI and Starlette say in English about a malformed body (by the start of the text).
_FRAMEWORK_DETAILS = (
    ("There was an error parsing the body", "Der Inhalt der Anfrage ist kein gültiges JSON."),
    ("Too many files", "Die Anfrage enthält zu viele Dateien."),
    ("Too many fields", "Das Formular enthält zu viele Felder."),
    ("Field exceeded maximum size", "Ein Formularfeld ist zu lang."),
    ("Part exceeded maximum size", "Ein Teil des Formulars ist zu groß."),
    ("Missing boundary", "Das Formular ist fehlerhaft (multipart ohne Trennzeile)."),
    ("Invalid multipart data", "Das Formular ist fehlerhaft (multipart nicht lesbar)."),
    ('The Content-Disposition header field "name"', "Einem Formularfeld fehlt der Name."),
)


def german_detail(detail: str) -> str:
    """The framework's English text for a malformed request in German, with what to do."""
    for start, german in _FRAMEWORK_DETAILS:
        if detail.startswith(start):
            return f"{german} Bitte die Anfrage prüfen und erneut senden."
    return detail


def jsonable_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [{"loc": list(e["loc"]), "type": e["type"]} for e in exc.errors()]


def _personal(request: Request) -> bool:
    """Whether the response may hold what only this caller may see: the request carried a login
    session or an API key (ASVS 8.1.1). Static files never do."""
    if request.url.path.startswith("/static/"):
        return False
    headers = request.headers
    return (
        cookies.carries_session_cookie(request)
        or "authorization" in headers
        or "x-api-key" in headers
        or getattr(request.state, "auth", None) is not None
    )


def set_security_headers(request: Request, response: Response, settings: Settings) -> None:
    """The security headers of every response (unless the route set its own).

    Every response to a signed-in person or an API key is ``Cache-Control: no-store`` (pages,
    JSON, downloads, errors, redirects): neither the browser nor a proxy keeps a copy for the
    next user of the computer. A route's own value stays only if it already says ``no-store``."""
    if _personal(request) and "no-store" not in response.headers.get("Cache-Control", ""):
        response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if "frame-ancestors *" not in response.headers.get("Content-Security-Policy", ""):
        # Only the assistant's embed page may be framed (its own CSP says so).
        response.headers.setdefault("X-Frame-Options", "DENY")
    if request.url.path != "/docs":
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'self'",
        )
    if settings.secure_cookies:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")


def _security_headers(app: FastAPI, settings: Settings) -> None:
    @app.middleware("http")
    async def headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        set_security_headers(request, response, settings)
        return response


def _demo_credentials(settings: Settings) -> list[dict[str, str]]:
    if not settings.is_demo:
        return []
    try:
        from rathaus.core.demo import demo_credentials
    except ImportError:  # pragma: no cover - the demo package ships with Rathaus
        return []
    return demo_credentials()


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the web app for ``settings`` (default: :func:`load_settings`)."""
    settings = settings or load_settings()
    db = database or Database.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        consumer = None
        if settings.queue.backend == "sqlite" and settings.queue.embedded_worker:
            from rathaus.jobs import start_embedded_consumer

            consumer = start_embedded_consumer(settings)
        try:
            yield
        finally:
            if consumer is not None:
                from rathaus.jobs import stop

                stop(consumer)
            if database is None:
                db.dispose()

    app = FastAPI(
        title="Rathaus",
        version=rathaus.__version__,
        description="Souveräne KI-Werkbank für Kommunalverwaltungen – JSON-API.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.demo_credentials = _demo_credentials(settings)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="Rathaus – API-Dokumentation",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )

    for router in (
        health.router,
        auth_views.router,
        second_factor_login.router,
        account_sessions.router,
        second_factor.router,
        pages.router,
        api.router,
        system.router,
        open311.router,
        inbox_views.router,
        inbox_admin.router,
        inbox_sources.router,
        inbox_api.router,
        assistant_views.router,
        assistant_api.router,
        knowledge_views.router,
        writing_views.router,
        writing_summaries.router,
        writing_minutes.router,
        writing_speech.router,
        writing_plain.router,
        writing_letters.router,
        insights_views.router,
        insights_forecast.router,
        insights_process.router,
        insights_bookings.router,
        insights_winter.router,
        governance_audit.router,
        governance_models.router,
        governance_register.router,
        governance_privacy.router,
    ):
        app.include_router(router)
    app.include_router(oidc.router)  # optional SSO; its routes answer 404 unless oidc.enabled
    _install_error_handlers(app)
    # Inside the security headers, so a refused body gets them too (docs/limits.md).
    app.add_middleware(limits.BodyLimitMiddleware, settings=settings, render_error=_error)
    _security_headers(app, settings)
    observability.install(app)  # last, so outermost: request ids and metrics for everything
    return app


def all_routes(app: FastAPI) -> list[Any]:
    """Every route of the app, including those of included routers (for generated tests)."""
    found: list[Any] = []

    def walk(routes: list[Any]) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                walk(inner.routes)
            else:
                found.append(route)

    walk(list(app.routes))
    return found
