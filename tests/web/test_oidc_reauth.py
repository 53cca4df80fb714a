"""Re-authentication at the identity provider (ASVS 3.7.1) for accounts without a password: a
fresh sign-in (``prompt=login``, ``max_age=0``) for the session's own ``sub`` with a fresh
``auth_time`` sets the same five-minute mark as the password; a provider that skips the sign-in,
another account, another session or a bad token set none. A form sent before the confirmation
is kept server-side and shown once afterwards, to be sent with a click. Against the real test
provider."""

from __future__ import annotations

import datetime as dt
import html
import re
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from rathaus.core.models import AuditEvent, Case, ReauthKeptForm, RetentionRule, User, WebSession
from rathaus.core.storage import OriginalStore
from rathaus.web import oidc, oidc_reauth, reauth, reauth_keep
from rathaus.web.app import create_app
from tests.factories import drop_password
from tests.governance.test_retention import make_case
from tests.web import test_oidc as provider
from tests.web.conftest import csrf_of
from tests.web.test_oidc import sso_login, sso_settings

# The test provider's fixtures (a real OpenID provider on loopback), shared with test_oidc.py.
idp_server = provider.idp_server
idp = provider.idp

PAGE = "/governance/datenschutz"
SUBJECT = "kc-dsb"
ERIKA = {"name": "Erika Beispiel", "email": "erika.beispiel@example.org"}


@pytest.fixture
def app(db, tmp_path, idp):  # type: ignore[no-untyped-def]
    settings = sso_settings(
        tmp_path, f"{idp.url}/.well-known/openid-configuration", database_url=db.url
    )
    return create_app(settings, database=db)


@pytest.fixture
def client(app, worlds, idp) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """The data-protection officer, signed in through the provider, without a password."""
    with TestClient(app, follow_redirects=False) as c:
        idp.person = {"sub": SUBJECT, "preferred_username": "dsb"}
        assert sso_login(c, next="/").status_code == 303
        drop_password(app.state.db, "dsb")
        yield c


def _events(db, kind: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.kind == kind)))


def _sso_link(page: httpx.Response, form: str) -> str:
    found = re.search(rf'id="{form}-passwort-sso" href="([^"]+)"', page.text)
    assert found, "kein Link zur erneuten Anmeldung"
    return html.unescape(found.group(1))


def _confirm(client: TestClient, link: str, *, between=None) -> httpx.Response:  # type: ignore[no-untyped-def]
    """Follow the page's link through the provider (real HTTP) back to the callback."""
    start = client.get(link)
    assert start.status_code == 303, start.text
    answer = httpx.get(start.headers["location"], follow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    if between:
        between()
    return client.get(answer.headers["location"])


def _apply(client: TestClient) -> httpx.Response:
    return client.post(f"{PAGE}/anwenden", data={"csrf_token": csrf_of(client), "ausfuehren": "1"})


def _to_provider(response: httpx.Response, action: str) -> str:
    """An unconfirmed form: nothing ran, the form was kept and the browser goes to the
    confirmation with the reference to it; the way there."""
    assert response.status_code == 200, response.text
    assert "Ihre Eingaben sind aufbewahrt; ausgeführt wurde nichts" in response.text
    refresh = response.headers["refresh"]
    assert refresh.startswith("0; url=")
    location = refresh.removeprefix("0; url=")
    query = dict(parse_qsl(urlsplit(location).query))
    assert location.startswith("/login/oidc?")
    assert query["erneut"] == "1" and query["aktion"] == action
    assert reauth_keep.valid_token(query["formular"])
    return location


def test_a_fresh_sign_in_at_the_provider_confirms_for_five_minutes(client, idp, db):
    page = client.get(PAGE)
    assert "Beim Anmeldedienst erneut anmelden" in page.text
    assert "Kommandozeile" not in page.text and 'name="passwort"' not in page.text
    _to_provider(_apply(client), "aufbewahrung_anwenden")

    link = _sso_link(page, "anwenden")
    assert dict(parse_qsl(urlsplit(link).query)) == {
        "erneut": "1",
        "next": PAGE,
        "aktion": "anwenden",
    }
    idp.signed_in_at = int(time.time()) - 3600  # the provider's session is an hour old
    done = _confirm(client, link)
    asked = idp.authorizations[-1]
    assert asked["prompt"] == "login" and asked["max_age"] == "0"
    assert asked["nonce"] and asked["state"] and asked["code_challenge_method"] == "S256"

    assert done.status_code == 200 and "Bestätigt" in done.text
    # Back by a refresh, not a redirect: the SameSite=Strict mark is then sent along.
    assert done.headers["refresh"] == f"0; url={PAGE}"
    cookies = done.headers.get_list("set-cookie")
    mark = next(c for c in cookies if c.startswith(reauth.MARK_COOKIE + "="))
    assert "samesite=strict" in mark.lower() and "httponly" in mark.lower()
    assert any(c.startswith(oidc.FLOW_COOKIE + '=""') for c in cookies)  # flow used up
    assert [(e.actor, e.subject, e.data) for e in _events(db, "reauth_confirmed")] == [
        ("dsb", "anwenden", {"gueltig_s": reauth.WINDOW_S, "methode": "oidc"})
    ]

    assert "Beim Anmeldedienst erneut anmelden" not in client.get(PAGE).text
    applied = _apply(client)
    assert applied.status_code == 200 and "Erledigt:" in applied.text
    assert _events(db, "reauth_failed") == []


def test_the_erasure_goes_through_after_the_confirmation(client, idp, db, worlds):
    store = OriginalStore(client.app.state.settings.originals_dir)
    with db.session() as session:
        case_id = make_case(session, worlds["a"], store, reference="ALP-W-1").id
    token = csrf_of(client)
    # The plan comes from a POST: the way back is the page it was shown on (Referer).
    referer = {"referer": f"http://testserver{PAGE}?tab=1"}
    plan = client.post(f"{PAGE}/loeschung", data={"csrf_token": token, **ERIKA}, headers=referer)
    assert plan.status_code == 200
    link = _sso_link(plan, "loeschung")
    assert dict(parse_qsl(urlsplit(link).query))["next"] == f"{PAGE}?tab=1"

    assert _confirm(client, link).headers["refresh"] == f"0; url={PAGE}?tab=1"
    erase = {"csrf_token": token, **ERIKA, "bestaetigen": "1"}
    done = client.post(f"{PAGE}/loeschung", data=erase)
    assert done.status_code == 200 and "Löschantrag Nr." in done.text
    with db.session() as session:
        assert session.get(Case, case_id) is None


def _refused(
    client: TestClient, db, response: httpx.Response, status: int, message: str, reason: str
):  # type: ignore[no-untyped-def]
    assert response.status_code == status
    text = html.unescape(response.text)
    assert message in text and "Traceback" not in text
    assert "refresh" not in response.headers
    assert reauth.MARK_COOKIE not in response.headers.get("set-cookie", "")
    _to_provider(_apply(client), "aufbewahrung_anwenden")  # still not confirmed
    failed = _events(db, "reauth_failed")
    assert [(e.actor, e.data["grund"], e.data["methode"]) for e in failed] == [
        ("dsb", reason, "oidc")
    ]
    assert _events(db, "reauth_confirmed") == []


def test_a_provider_that_skips_the_sign_in_sets_no_mark(client, idp, db):
    idp.ignore_prompt = True
    idp.signed_in_at = int(time.time()) - 600  # the sign-in of ten minutes ago
    response = _confirm(client, _sso_link(client.get(PAGE), "anwenden"))
    _refused(client, db, response, 401, oidc_reauth.REAUTH_NOT_FRESH, "sso_nicht_frisch")
    # The way on: try again, or back to the page.
    assert "Beim Anmeldedienst erneut anmelden" in response.text
    assert f'href="{PAGE}"' in response.text


def test_a_provider_without_auth_time_sets_no_mark(client, idp, db):
    idp.send_auth_time = False
    response = _confirm(client, _sso_link(client.get(PAGE), "anwenden"))
    _refused(client, db, response, 401, oidc_reauth.REAUTH_NOT_FRESH, "sso_nicht_frisch")


def test_another_account_at_the_provider_sets_no_mark(client, idp, db):
    idp.person = {"sub": "kc-jemand-anders", "preferred_username": "dsb"}
    response = _confirm(client, _sso_link(client.get(PAGE), "anwenden"))
    _refused(client, db, response, 403, oidc_reauth.REAUTH_OTHER_ACCOUNT, "sso_anderes_konto")


@pytest.mark.parametrize(
    "claims",
    [{"nonce": "anderes-nonce"}, {"aud": "anderer-client"}, {"exp": int(time.time()) - 3600}],
    ids=["nonce", "aud", "exp"],
)
def test_a_token_the_login_would_refuse_sets_no_mark(client, idp, db, claims):
    idp.claims = claims
    response = _confirm(client, _sso_link(client.get(PAGE), "anwenden"))
    _refused(client, db, response, 401, oidc.CONFIRMATION_INVALID, "sso_bestaetigung_ungueltig")


def test_a_refusal_at_the_provider_sets_no_mark(client, idp, db):
    idp.deny = True
    response = _confirm(client, _sso_link(client.get(PAGE), "anwenden"))
    _refused(client, db, response, 401, oidc.DENIED, "sso_abgelehnt")


def test_a_provider_on_a_blocked_address_is_explained_and_audited(client, idp, db, tmp_path):
    """The same installation with the provider configured on the metadata address: the
    confirmation stops before any request with the setting named."""
    blocked = sso_settings(tmp_path, "http://169.254.169.254/.well-known/openid-configuration")
    link = _sso_link(client.get(PAGE), "anwenden")
    with TestClient(create_app(blocked, database=db), follow_redirects=False) as other:
        other.cookies = client.cookies  # the same signed-in session
        fetched = list(idp.fetched)
        response = other.get(link)
    assert idp.fetched == fetched
    assert response.status_code == 503
    assert "RATHAUS_OIDC__ALLOWED_NETWORKS" in html.unescape(response.text)
    _refused(client, db, response, 503, oidc.PROVIDER_BLOCKED, "sso_adresse_gesperrt")


def test_a_token_endpoint_on_another_internal_host_is_refused_and_audited(client, idp, db):
    """The discovery document names a token endpoint on another internal host (``localhost``
    beside the configured 127.0.0.1): the return is refused with the setting named before that
    endpoint is asked."""
    idp.announce = {"token_endpoint": provider.on_localhost(idp, "/token")}
    oidc._cache.clear()  # the provider's new discovery document
    link = _sso_link(client.get(PAGE), "anwenden")
    idp.fetched.clear()
    response = _confirm(client, link)
    assert idp.fetched == ["/.well-known/openid-configuration"]
    assert "RATHAUS_OIDC__ALLOWED_NETWORKS" in html.unescape(response.text)
    _refused(client, db, response, 503, oidc.PROVIDER_BLOCKED, "sso_adresse_gesperrt")


def test_the_confirmation_belongs_to_the_session_that_asked(client, idp, db):
    """A new login between start and return (another session of the same person) gets no
    mark from the old flow."""
    link = _sso_link(client.get(PAGE), "anwenden")

    def new_session() -> None:
        flow = client.cookies[oidc.FLOW_COOKIE]
        client.cookies.clear()
        assert sso_login(client, next="/").status_code == 303
        client.cookies.set(oidc.FLOW_COOKIE, flow, domain="testserver.local")

    response = _confirm(client, link, between=new_session)
    _refused(client, db, response, 400, oidc_reauth.REAUTH_SESSION_CHANGED, "sso_andere_sitzung")


def test_an_ended_session_is_sent_to_the_login(client, idp, db):
    link = _sso_link(client.get(PAGE), "anwenden")

    def log_out() -> None:
        assert client.post("/logout", data={"csrf_token": csrf_of(client)}).status_code == 303

    response = _confirm(client, link, between=log_out)
    assert response.status_code == 401
    assert oidc_reauth.REAUTH_SESSION_ENDED in html.unescape(response.text)
    assert reauth.MARK_COOKIE not in response.headers.get("set-cookie", "")
    assert _events(db, "reauth_confirmed") == []


def test_the_way_back_stays_on_this_site(client, idp):
    done = _confirm(client, "/login/oidc?erneut=1&next=//boese.example/&aktion=x")
    assert done.status_code == 200 and done.headers["refresh"] == "0; url=/"
    tricky = _confirm(client, "/login/oidc?erneut=1&next=/a%0d%0aSet-Cookie:%20x=1&aktion=<b>")
    assert tricky.headers["refresh"] == "0; url=/a%0D%0ASet-Cookie:%20x=1"
    assert "x=1" not in tricky.headers.get("set-cookie", "")


def test_without_a_session_it_is_the_ordinary_login(app, worlds, idp):
    with TestClient(app, follow_redirects=False) as fresh:
        start = fresh.get("/login/oidc", params={"erneut": "1", "next": PAGE})
        query = dict(parse_qsl(urlsplit(start.headers["location"]).query))
        assert "prompt" not in query and "max_age" not in query


def test_an_account_without_a_bound_provider_account_keeps_the_cli(client, db):
    with db.session() as session:
        session.execute(update(User).where(User.username == "dsb").values(oidc_subject=None))
    page = client.get(PAGE)
    assert "Beim Anmeldedienst erneut anmelden" not in page.text
    assert "Administration auf dem Server" in page.text
    refused = _apply(client)
    assert refused.status_code == 403
    assert "Kommandozeile" in html.unescape(refused.text)
    assert [e.data["grund"] for e in _events(db, "reauth_failed")] == ["kein_passwort"]


@pytest.mark.parametrize(
    ("auth_time", "fresh"),
    [
        (1005, True),  # signed in during the flow
        (1000 - oidc_reauth.REAUTH_SKEW_S, True),  # the provider's clock a little behind
        (1000 - oidc_reauth.REAUTH_SKEW_S - 1, False),  # before the flow began: prompt ignored
        (1010 + oidc_reauth.REAUTH_SKEW_S + 1, False),  # in the future
        (None, False),
        (True, False),
        ("1005", False),
    ],
)
def test_auth_time_must_fall_within_the_flow(auth_time, fresh):
    claims = {} if auth_time is None else {"auth_time": auth_time}
    if fresh:
        oidc_reauth.check_fresh(claims, began=1000, now=1010)
    else:
        with pytest.raises(oidc.OIDCLoginError) as refused:
            oidc_reauth.check_fresh(claims, began=1000, now=1010)
        assert refused.value.message == oidc_reauth.REAUTH_NOT_FRESH


def test_auth_time_older_than_two_minutes_is_stale_even_in_a_long_flow():
    limit = oidc_reauth.REAUTH_MAX_AGE_S + oidc_reauth.REAUTH_SKEW_S
    oidc_reauth.check_fresh({"auth_time": 1000 - limit}, began=0, now=1000)
    with pytest.raises(oidc.OIDCLoginError):
        oidc_reauth.check_fresh({"auth_time": 1000 - limit - 1}, began=0, now=1000)


# Forms kept during the confirmation -------------------------------------------------------------
RULES = f"{PAGE}/regeln"
RULE = {"ziel": "vorgang", "art": "", "tage": "4321", "aktion": "anonymisieren", "aktiv": "1"}
ON_PAGE = {"referer": f"http://testserver{PAGE}"}


class _KeptForm(HTMLParser):
    """The kept form's ``action`` and fields on the confirmation page."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: list[tuple[str, str]] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form" and found.get("id") == "aufbewahrt-formular":
            self._inside, self.action = True, found.get("action") or ""
        elif tag == "input" and self._inside:
            self.fields.append((found.get("name") or "", found.get("value") or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def _kept_form(page: httpx.Response) -> _KeptForm:
    parsed = _KeptForm()
    parsed.feed(page.text)
    return parsed


def _rules(db) -> list[RetentionRule]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return list(session.scalars(select(RetentionRule).where(RetentionRule.days == 4321)))


def _kept_rows(db) -> list[ReauthKeptForm]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return list(session.scalars(select(ReauthKeptForm)))


def _kept_fields(row: Any, link: str) -> list[tuple[str, str]]:
    """The fields of a kept form, opened with the reference its provider link carries."""
    token = dict(parse_qsl(urlsplit(link).query))["formular"]
    fields = reauth_keep._unseal(token, row.sealed)
    assert fields is not None
    return fields


def _send_rule(client: TestClient, **extra: str) -> httpx.Response:
    data = {"csrf_token": csrf_of(client), **RULE, "passwort": "geheim", **extra}
    return client.post(RULES, data=data, headers=ON_PAGE)


def test_a_rule_typed_before_the_confirmation_is_kept_and_saved_after_a_click(client, idp, db):
    """The whole way: the form goes to the provider and back, the person sees what will be
    saved, and one click saves exactly that."""
    link = _to_provider(
        _send_rule(client, notiz="<script>alert(1)</script>"), "aufbewahrungsregel_speichern"
    )
    assert dict(parse_qsl(urlsplit(link).query))["next"] == PAGE
    assert _rules(db) == []  # nothing ran
    (row,) = _kept_rows(db)
    fields = _kept_fields(row, link)
    assert "geheim" not in str(fields) and "csrf_token" not in str(fields)
    assert ("notiz", "<script>alert(1)</script>") in fields
    # stored encrypted: the database alone does not show what was typed
    assert "4321" not in row.sealed and "script" not in row.sealed
    assert reauth_keep._unseal("x" * 32, row.sealed) is None  # another reference: no key
    assert row.path == RULES and row.action == "aufbewahrungsregel_speichern"

    page = _confirm(client, link)
    assert page.status_code == 200 and "refresh" not in page.headers
    text = html.unescape(page.text)
    assert "Ihre Eingaben wurden aufbewahrt" in text
    assert "Aktion: Aufbewahrungsregel speichern" in text and "4321" in text
    assert "<script>alert(1)" not in page.text  # escaped, shown as text
    assert any(c.startswith(reauth.MARK_COOKIE + "=") for c in page.headers.get_list("set-cookie"))
    assert _rules(db) == []  # still nothing ran: the page waits for the click
    assert _kept_rows(db) == []  # used up

    kept = _kept_form(page)
    assert kept.action == RULES
    token = csrf_of(client)
    assert kept.fields == [
        ("csrf_token", token),
        *RULE.items(),
        ("notiz", "<script>alert(1)</script>"),
    ]
    done = client.post(kept.action, data=dict(kept.fields))
    assert done.status_code == 303 and done.headers["location"] == f"{PAGE}?meldung=regel"
    (rule,) = _rules(db)
    assert (rule.target, rule.request_type, rule.action, rule.is_active) == (
        "vorgang",
        "",
        "anonymisieren",
        True,
    )
    assert [e.subject for e in _events(db, "reauth_confirmed")] == ["aufbewahrungsregel_speichern"]


def test_an_erasure_is_kept_and_executed_only_by_the_click(client, idp, db, worlds):
    store = OriginalStore(client.app.state.settings.originals_dir)
    with db.session() as session:
        case_id = make_case(session, worlds["a"], store, reference="ALP-W-2").id
    erase = {"csrf_token": csrf_of(client), **ERIKA, "bestaetigen": "1", "passwort": ""}
    link = _to_provider(
        client.post(f"{PAGE}/loeschung", data=erase, headers=ON_PAGE), "dsgvo_loeschung"
    )
    page = _confirm(client, link)
    assert "Löschung nach Art. 17 DSGVO ausführen" in html.unescape(page.text)
    with db.session() as session:
        assert session.get(Case, case_id) is not None
    kept = _kept_form(page)
    assert [name for name, _ in kept.fields] == ["csrf_token", "name", "email", "bestaetigen"]
    done = client.post(kept.action, data=dict(kept.fields))
    assert done.status_code == 200 and "Löschantrag Nr." in done.text
    with db.session() as session:
        assert session.get(Case, case_id) is None


def test_a_kept_form_is_shown_once(client, idp, db):
    link = _to_provider(_send_rule(client), "aufbewahrungsregel_speichern")
    assert "Ihre Eingaben wurden aufbewahrt" in _confirm(client, link).text
    again = _confirm(client, link)
    text = html.unescape(again.text)
    assert again.status_code == 200 and "Ihre Eingaben wurden aufbewahrt" not in text
    assert "abgelaufen oder wurden schon verwendet" in text and "4321" not in text
    assert _kept_form(again).action == "" and _rules(db) == []


def test_a_kept_form_expires(client, idp, db):
    link = _to_provider(_send_rule(client), "aufbewahrungsregel_speichern")
    past = reauth_keep.utcnow() - dt.timedelta(seconds=1)
    with db.session() as session:
        session.execute(update(ReauthKeptForm).values(expires_at=past))
    # An expired form gives way when the next one is kept.
    _to_provider(_apply(client), "aufbewahrung_anwenden")
    assert [row.path for row in _kept_rows(db)] == [f"{PAGE}/anwenden"]
    page = _confirm(client, link)
    text = html.unescape(page.text)
    assert page.status_code == 200 and "abgelaufen oder wurden schon verwendet" in text
    assert "4321" not in text and _kept_form(page).action == "" and _rules(db) == []


def test_another_session_never_sees_the_kept_form(app, client, idp, db):
    """The same person signed in elsewhere (another browser) follows the first session's way
    to the provider: it is confirmed itself, but the form stays with the session that sent it."""
    link = _to_provider(_send_rule(client, tage="4321"), "aufbewahrungsregel_speichern")
    with TestClient(app, follow_redirects=False) as other:
        assert sso_login(other, next="/").status_code == 303
        page = _confirm(other, link)
    text = html.unescape(page.text)
    assert page.status_code == 200 and "Ihre Eingaben wurden aufbewahrt" not in text
    assert "4321" not in text and _kept_form(page).action == ""
    assert len(_kept_rows(db)) == 1  # still there for its own session
    assert "4321" in html.unescape(_confirm(client, link).text)


def test_another_persons_session_finds_nothing(client, idp, db):
    """Even with the reference itself, another person's session gets nothing."""
    link = _to_provider(_send_rule(client), "aufbewahrungsregel_speichern")
    token = dict(parse_qsl(urlsplit(link).query))["formular"]
    with db.session() as session:
        someone = session.scalars(select(User).where(User.username != "dsb")).first()
        assert someone is not None
        other = WebSession(
            token_hash="0" * 64,
            user_id=someone.id,
            tenant_id=someone.tenant_id,
            csrf_token="t",
            expires_at=reauth_keep.utcnow() + dt.timedelta(hours=1),
        )
        session.add(other)
        session.flush()
        assert reauth_keep.waiting(session, other, token) is None
        assert reauth_keep.take(session, other, token) is None
    assert len(_kept_rows(db)) == 1


def test_a_refused_confirmation_keeps_the_form_and_runs_nothing(client, idp, db):
    link = _to_provider(_send_rule(client), "aufbewahrungsregel_speichern")
    idp.deny = True
    refused = _confirm(client, link)
    assert refused.status_code == 401
    text = html.unescape(refused.text)
    assert oidc.DENIED in text and "Ihre Eingaben bleiben noch etwa" in text
    assert _rules(db) == [] and len(_kept_rows(db)) == 1
    again = re.search(r'<a class="button" href="([^"]+)">Beim Anmeldedienst', refused.text)
    assert again
    again_link = html.unescape(again.group(1))
    token = dict(parse_qsl(urlsplit(link).query))["formular"]
    assert dict(parse_qsl(urlsplit(again_link).query))["formular"] == token
    idp.deny = False
    page = _confirm(client, again_link)
    assert "Ihre Eingaben wurden aufbewahrt" in page.text and "4321" in page.text


def test_an_oversized_form_is_not_kept_and_says_so(client, idp, db):
    big = "x" * (reauth_keep.MAX_BYTES + 1)
    refused = _send_rule(client, notiz=big)
    assert refused.status_code == 413
    assert reauth_keep.TOO_LARGE in html.unescape(refused.text)
    assert _kept_rows(db) == [] and _rules(db) == []
    assert 'value="4321"' in refused.text  # the page keeps what was typed meanwhile


def test_password_fields_are_never_kept(client, idp, db):
    link = _to_provider(
        _send_rule(client, Password="a", neues_passwort="b", passwort_wiederholung="c"),
        "aufbewahrungsregel_speichern",
    )
    (row,) = _kept_rows(db)
    assert [name for name, _ in _kept_fields(row, link)] == list(RULE)


def test_an_htmx_form_is_kept_and_the_page_navigates(client, idp, db):
    data = {"csrf_token": csrf_of(client), **RULE}
    answer = client.post(RULES, data=data, headers={**ON_PAGE, "hx-request": "true"})
    assert answer.status_code == 200 and answer.text == ""
    query = dict(parse_qsl(urlsplit(answer.headers["hx-redirect"]).query))
    assert query["aktion"] == "aufbewahrungsregel_speichern" and len(_kept_rows(db)) == 1
