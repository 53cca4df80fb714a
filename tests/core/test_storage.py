"""Originals are kept byte for byte, addressed by hash, per tenant, and checked on read."""

from __future__ import annotations

import os

import pytest

from rathaus.core.storage import OriginalStore, StorageError


def test_put_and_get_roundtrip(tmp_path):
    store = OriginalStore(tmp_path)
    data = b"%PDF-1.7\n\x00\xff Widerspruch gegen Bescheid"
    first = store.put(1, data)
    assert first.already_present is False and first.size == len(data)
    assert store.get(1, first.sha256) == data
    again = store.put(1, data)
    assert again.already_present is True and again.relative_path == first.relative_path
    assert not store.exists(2, first.sha256)  # another tenant has its own folder


def test_tampering_and_missing_files_are_reported(tmp_path):
    store = OriginalStore(tmp_path)
    stored = store.put(7, b"Original")
    path = tmp_path / stored.relative_path
    os.chmod(path, 0o640)
    path.write_bytes(b"Faelschung")
    with pytest.raises(StorageError, match="verändert"):
        store.get(7, stored.sha256)
    with pytest.raises(StorageError, match="fehlt"):
        store.get(7, "0" * 64)


@pytest.mark.parametrize("key", ["../../etc/passwd", "ab/../../x", "A" * 64, ""])
def test_keys_cannot_escape_the_store(tmp_path, key):
    with pytest.raises(StorageError, match="Ungültiger Dateischlüssel"):
        OriginalStore(tmp_path).get(1, key)


def test_delete_removes_only_that_tenants_original(tmp_path):
    store = OriginalStore(tmp_path)
    one = store.put(1, b"Antrag auf Sperrmuell")
    two = store.put(2, b"Antrag auf Sperrmuell")
    assert store.delete(1, one.sha256) is True
    assert not store.exists(1, one.sha256) and store.exists(2, two.sha256)
    assert store.delete(1, one.sha256) is False
    with pytest.raises(StorageError, match="Ungültiger Dateischlüssel"):
        store.delete(1, "../../etc/passwd")


def test_a_non_durable_put_is_synced_by_make_durable(tmp_path, monkeypatch):
    from rathaus.core import storage

    synced = []
    real = storage._fsync
    monkeypatch.setattr(storage, "_fsync", lambda p: (real(p), synced.append(p)))
    store = OriginalStore(tmp_path)
    stored = store.put(3, b"Antrag auf Parkausweis", durable=False)
    assert synced == [] and store.get(3, stored.sha256) == b"Antrag auf Parkausweis"
    store.make_durable([stored.relative_path])
    path = tmp_path / stored.relative_path
    assert set(synced) == {path, path.parent, path.parent.parent}
    with pytest.raises(StorageError, match="nicht gespeichert"):
        store.make_durable(["3/00/" + "0" * 64])


def test_a_left_over_file_with_other_bytes_is_written_again(tmp_path):
    # e.g. written without fsync right before a crash: the size may be there, the bytes not
    store = OriginalStore(tmp_path)
    data = b"Widerspruch vom 3. Mai"
    first = store.put(5, data)
    path = tmp_path / first.relative_path
    os.chmod(path, 0o640)
    path.write_bytes(b"\x00" * len(data))
    again = store.put(5, data)
    assert again.already_present is False and store.get(5, again.sha256) == data
    assert store.put(5, data).already_present is True
