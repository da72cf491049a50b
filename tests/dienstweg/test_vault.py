"""Envelope encryption: data keys wrapped by versioned master keys, AES-GCM bound to
table, row and field, crypto-shredding, blind indexes."""

import base64
import os

import pytest
from django.db import connection

from dienstweg import vault
from dienstweg.models import AuthenticatorDevice, DataKey
from tests.conftest import enrol

ARGS = {"table": "dienstweg_family", "row": "7", "field": "address"}


@pytest.fixture
def data_key(db) -> DataKey:
    return vault.create_data_key()


def test_round_trip(data_key):
    ciphertext = vault.encrypt(data_key, "Horster Straße 30", **ARGS)
    assert b"Horster" not in ciphertext
    assert vault.decrypt(data_key, ciphertext, **ARGS) == "Horster Straße 30"


@pytest.mark.parametrize(
    "other", [{"row": "8"}, {"field": "phone"}, {"table": "dienstweg_householdmember"}]
)
def test_ciphertext_moved_to_another_row_field_or_table_fails(data_key, other):
    ciphertext = vault.encrypt(data_key, "geheim", **ARGS)
    with pytest.raises(vault.VaultError):
        vault.decrypt(data_key, ciphertext, **{**ARGS, **other})


def test_tampered_ciphertext_fails(data_key):
    ciphertext = bytearray(vault.encrypt(data_key, "geheim", **ARGS))
    ciphertext[-1] ^= 1
    with pytest.raises(vault.VaultError):
        vault.decrypt(data_key, bytes(ciphertext), **ARGS)


def test_another_familys_key_cannot_read(data_key):
    ciphertext = vault.encrypt(data_key, "geheim", **ARGS)
    with pytest.raises(vault.VaultError):
        vault.decrypt(vault.create_data_key(), ciphertext, **ARGS)


def test_wrapped_key_is_not_the_key(data_key):
    assert vault.unwrap(data_key) not in bytes(data_key.wrapped)


def test_rewrap_with_new_master_key_keeps_data_readable(data_key, settings):
    ciphertext = vault.encrypt(data_key, "geheim", **ARGS)
    old = settings.VAULT_MASTER_KEYS[1]
    settings.VAULT_MASTER_KEYS = {1: old, 2: os.urandom(32)}
    assert vault.rewrap(data_key) is True
    assert vault.rewrap(data_key) is False
    data_key.refresh_from_db()
    assert data_key.master_version == 2
    settings.VAULT_MASTER_KEYS = {2: settings.VAULT_MASTER_KEYS[2]}  # the old key retired
    assert vault.decrypt(data_key, ciphertext, **ARGS) == "geheim"


def test_unknown_master_version_fails(data_key, settings):
    settings.VAULT_MASTER_KEYS = {9: os.urandom(32)}
    with pytest.raises(vault.VaultError):
        vault.decrypt(data_key, b"\x01" + os.urandom(40), **ARGS)


def test_deleted_data_key_makes_ciphertext_unreadable(data_key):
    ciphertext = vault.encrypt(data_key, "geheim", **ARGS)
    DataKey.objects.filter(pk=data_key.pk).delete()
    with pytest.raises(vault.VaultError):
        vault.decrypt(None, ciphertext, **ARGS)


def test_blind_index_ignores_case_and_spaces_but_not_content(settings):
    assert vault.blind_index("Ayşe  Yılmaz", "2015-03-01") == vault.blind_index(
        "ayşe yılmaz", "2015-03-01"
    )
    assert vault.blind_index("Ayşe Yılmaz", "2015-03-01") != vault.blind_index(
        "Ayşe Yılmaz", "2015-03-02"
    )
    before = vault.blind_index("Ayşe Yılmaz", "2015-03-01")
    settings.VAULT_BLIND_INDEX_KEY = b"another key"
    assert vault.blind_index("Ayşe Yılmaz", "2015-03-01") != before


def test_totp_secret_is_not_stored_in_plain_text(network):
    device = enrol(network.anna)
    secret_hex = device.key
    secret_b32 = base64.b32encode(bytes.fromhex(secret_hex)).decode()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM dienstweg_authenticatordevice")
        rows = cursor.fetchall()
    # Every column as text, binary ones as their bytes decoded leniently and as hex.
    cells = []
    for row in rows:
        for value in row:
            if isinstance(value, bytes | memoryview):
                cells += [bytes(value).decode("latin-1"), bytes(value).hex()]
            else:
                cells.append(str(value))
    raw = "\n".join(cells)
    assert any(len(cell) > 40 for cell in cells)  # the ciphertext is there
    for form in (secret_hex, secret_hex.upper(), secret_b32):
        assert form not in raw
    assert bytes.fromhex(secret_hex).decode("latin-1") not in raw
    # And it still works: the device decrypts it to verify codes.
    assert AuthenticatorDevice.objects.get(pk=device.pk).bin_key == bytes.fromhex(secret_hex)
