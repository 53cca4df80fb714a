"""Encrypted pseudonym mappings: keys from settings, rotation, a lost key, deletion with the case."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import delete, select

from rathaus.core.config import load_settings
from rathaus.core.db import Database
from rathaus.core.errors import ConfigError
from rathaus.core.models import Case, PseudonymMap
from rathaus.governance import keys
from tests.factories import build_tenant
from tests.test_cli import run

MAPPING = {"[PERSON_1]": "Anna Beispiel", "[IBAN_1]": "DE89 3704 0044 0532 0130 00"}


def settings_with(*pseudonym_keys: str, secret: str = "s" * 40):  # type: ignore[no-untyped-def]
    return load_settings(
        mode="demo", secret_key=secret, governance={"pseudonym_keys": list(pseudonym_keys)}
    )


def test_keyring_from_settings_first_key_encrypts_and_ids_are_stable() -> None:
    old, new = keys.generate_key(), keys.generate_key()
    ring = keys.Keyring.from_settings(settings_with(new, old))
    assert ring.ids == [keys.key_id(new), keys.key_id(old)] and not ring.derived
    kid, token = ring.encrypt(MAPPING)
    assert kid == keys.key_id(new) and b"Beispiel" not in token
    assert Fernet(new.encode()).decrypt(token)  # really encrypted with the first key
    assert ring.decrypt(kid, token, scope="case:1") == MAPPING
    # Without configured keys: one key derived from secret_key, the same for the same secret.
    derived = keys.Keyring.from_settings(settings_with())
    assert derived.derived and derived.ids == keys.Keyring.from_settings(settings_with()).ids
    assert derived.ids != keys.Keyring.from_settings(settings_with(secret="t" * 40)).ids


def test_an_invalid_key_in_the_settings_is_a_german_config_error() -> None:
    with pytest.raises(ConfigError, match="2. Schlüssel in RATHAUS_GOVERNANCE__PSEUDONYM_KEYS"):
        keys.Keyring.from_settings(settings_with(keys.generate_key(), "kein-schluessel"))


def test_mapping_is_stored_encrypted_rotated_and_deleted_with_its_case(db: Database) -> None:
    old, new = keys.generate_key(), keys.generate_key()
    with db.session() as session:
        world = build_tenant(session, "alpha")
        case = world.cases["BA"]
        keys.save_mapping(
            session,
            tenant_id=world.tenant.id,
            scope=keys.case_scope(case.id),
            case_id=case.id,
            mapping=MAPPING,
            keyring=keys.Keyring.from_settings(settings_with(old)),
        )
        case_id, tenant_id = case.id, world.tenant.id
    with db.session() as session:
        row = session.scalars(select(PseudonymMap)).one()
        assert row.key_id == keys.key_id(old) and b"Anna" not in bytes(row.ciphertext)
        # Rotation: the new key in front, the old one behind it.
        both = keys.Keyring.from_settings(settings_with(new, old))
        result = keys.rotate(session, both)
        assert (result.rotated, result.unchanged, result.unreadable) == (1, 0, [])
    with db.session() as session:
        only_new = keys.Keyring.from_settings(settings_with(new))
        assert (
            keys.load_mapping(
                session, tenant_id=tenant_id, scope=f"case:{case_id}", keyring=only_new
            )
            == MAPPING
        )
        assert keys.rotate(session, only_new).unchanged == 1
        session.execute(delete(Case).where(Case.id == case_id))  # as erasure does it
    with db.session() as session:
        assert session.scalars(select(PseudonymMap)).all() == []  # ON DELETE CASCADE


def test_lost_key_is_named_and_nothing_is_overwritten(db: Database) -> None:
    lost, other = keys.generate_key(), keys.generate_key()
    with db.session() as session:
        world = build_tenant(session, "alpha")
        keys.save_mapping(
            session,
            tenant_id=world.tenant.id,
            scope="case:77",
            mapping=MAPPING,
            keyring=keys.Keyring.from_settings(settings_with(lost)),
        )
        tenant_id = world.tenant.id
    ring = keys.Keyring.from_settings(settings_with(other))
    with db.session() as session:
        before = bytes(session.scalars(select(PseudonymMap)).one().ciphertext)
        with pytest.raises(keys.PseudonymKeyError) as caught:
            keys.load_mapping(session, tenant_id=tenant_id, scope="case:77", keyring=ring)
        assert keys.key_id(lost) in caught.value.message
        assert "RATHAUS_GOVERNANCE__PSEUDONYM_KEYS" in caught.value.message
        result = keys.rotate(session, ring)
        assert result.rotated == 0 and result.unreadable == [
            (tenant_id, "case:77", keys.key_id(lost))
        ]
    with db.session() as session:
        assert bytes(session.scalars(select(PseudonymMap)).one().ciphertext) == before


def test_key_commands_generate_rotate_and_report_a_lost_key(sqlite_db: Database, tmp_path):  # type: ignore[no-untyped-def]
    made = run(["governance", "schluessel-erzeugen"], tmp_path)
    assert made.returncode == 0, made.stderr
    new = made.stdout.strip()
    Fernet(new.encode())  # a valid key
    assert keys.key_id(new) in made.stderr and "schluessel-rotieren" in made.stderr
    old = keys.generate_key()
    with sqlite_db.session() as session:
        world = build_tenant(session, "alpha")
        for scope in ("case:1", "case:2"):
            keys.save_mapping(
                session,
                tenant_id=world.tenant.id,
                scope=scope,
                mapping=MAPPING,
                keyring=keys.Keyring.from_settings(settings_with(old)),
            )
    url = {"RATHAUS_DATABASE_URL": sqlite_db.url}
    rotated = run(
        ["governance", "schluessel-rotieren"],
        tmp_path,
        RATHAUS_GOVERNANCE__PSEUDONYM_KEYS=f'["{new}", "{old}"]',
        **url,
    )
    assert rotated.returncode == 0, rotated.stderr
    assert "Neu verschlüsselt: 2, schon aktuell: 0, nicht lesbar: 0" in rotated.stdout
    with sqlite_db.session() as session:
        assert {r.key_id for r in session.scalars(select(PseudonymMap))} == {keys.key_id(new)}
    lost = run(
        ["governance", "schluessel-rotieren"],
        tmp_path,
        RATHAUS_GOVERNANCE__PSEUDONYM_KEYS=f'["{keys.generate_key()}"]',
        **url,
    )
    assert lost.returncode == 1 and "Traceback" not in lost.stderr
    assert keys.key_id(new) in lost.stderr and "bleiben unverändert" in lost.stderr
    with sqlite_db.session() as session:
        assert {r.key_id for r in session.scalars(select(PseudonymMap))} == {keys.key_id(new)}
