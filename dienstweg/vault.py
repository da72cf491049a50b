"""Envelope encryption (DESIGN.md, "Encryption at rest").

Master keys (versioned, from the environment or a key file) wrap one data key per family
or staff account; data is encrypted with AES-256-GCM under the data key, with table, row and
field bound as associated data, so a ciphertext copied into another row or column fails
to decrypt. Blind indexes (HMAC with a key of their own) allow exact look-ups."""

from __future__ import annotations

import hashlib
import hmac
import os
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from dienstweg.models.keys import DataKey

FORMAT = b"\x01"  # first byte of every ciphertext: the format, for a later change
NONCE_BYTES = 12


class VaultError(Exception):
    """A ciphertext cannot be read: wrong row or field, tampered, or its key is gone."""


def master_keys() -> dict[int, bytes]:
    return dict(settings.VAULT_MASTER_KEYS)


def current_master_version() -> int:
    return max(master_keys())


def _master_key(version: int) -> bytes:
    try:
        return master_keys()[version]
    except KeyError:
        raise VaultError(f"master key version {version} is not configured") from None


def _wrap_aad(key_id: object) -> bytes:
    return f"dienstweg_datakey|{key_id}".encode()


def create_data_key() -> DataKey:
    """A new random data key, wrapped by the current master key and saved."""
    version = current_master_version()
    data_key = DataKey(master_version=version)
    nonce = os.urandom(NONCE_BYTES)
    encrypted = AESGCM(_master_key(version)).encrypt(
        nonce, AESGCM.generate_key(bit_length=256), _wrap_aad(data_key.id)
    )
    data_key.wrapped = FORMAT + nonce + encrypted
    data_key.save(force_insert=True)
    return data_key


@lru_cache(maxsize=4096)
def _unwrap(key_id: str, version: int, wrapped: bytes) -> bytes:
    # Cached by (id, version, wrapped bytes): a re-wrapped key is a new cache entry.
    if wrapped[:1] != FORMAT:
        raise VaultError("unknown data key format")
    nonce, encrypted = wrapped[1 : 1 + NONCE_BYTES], wrapped[1 + NONCE_BYTES :]
    try:
        return AESGCM(_master_key(version)).decrypt(nonce, encrypted, _wrap_aad(key_id))
    except InvalidTag:
        raise VaultError("data key cannot be unwrapped") from None


def forget_unwrapped_keys() -> None:
    """Drop the unwrapped data keys this process holds (after crypto-shredding, so that an
    erased family's key does not outlive its row in memory)."""
    _unwrap.cache_clear()


def unwrap(data_key: DataKey) -> bytes:
    return _unwrap(str(data_key.id), data_key.master_version, bytes(data_key.wrapped))


def rewrap(data_key: DataKey) -> bool:
    """Wrap the data key with the current master key; False if it already is."""
    version = current_master_version()
    if data_key.master_version == version:
        return False
    plain = unwrap(data_key)
    nonce = os.urandom(NONCE_BYTES)
    encrypted = AESGCM(_master_key(version)).encrypt(nonce, plain, _wrap_aad(data_key.id))
    data_key.wrapped = FORMAT + nonce + encrypted
    data_key.master_version = version
    data_key.save(update_fields=["wrapped", "master_version"])
    return True


def associated_data(table: str, row: object, field: str) -> bytes:
    return f"{table}|{row}|{field}".encode()


def encrypt(
    data_key: DataKey, plaintext: str | bytes, *, table: str, row: object, field: str
) -> bytes:
    if isinstance(plaintext, str):
        plaintext = plaintext.encode()
    nonce = os.urandom(NONCE_BYTES)
    encrypted = AESGCM(unwrap(data_key)).encrypt(
        nonce, plaintext, associated_data(table, row, field)
    )
    return FORMAT + nonce + encrypted


def decrypt(
    data_key: DataKey | None, ciphertext: bytes, *, table: str, row: object, field: str
) -> str:
    return decrypt_bytes(data_key, ciphertext, table=table, row=row, field=field).decode()


def decrypt_bytes(
    data_key: DataKey | None, ciphertext: bytes, *, table: str, row: object, field: str
) -> bytes:
    if data_key is None:
        raise VaultError("the data key has been destroyed")
    ciphertext = bytes(ciphertext)
    if ciphertext[:1] != FORMAT:
        raise VaultError("unknown ciphertext format")
    nonce, encrypted = ciphertext[1 : 1 + NONCE_BYTES], ciphertext[1 + NONCE_BYTES :]
    try:
        plain = AESGCM(unwrap(data_key)).decrypt(
            nonce, encrypted, associated_data(table, row, field)
        )
    except InvalidTag:
        raise VaultError("ciphertext does not belong here or was changed") from None
    return plain


def blind_index(*parts: str) -> str:
    """Keyed hash of normalised values, for exact look-ups without plaintext in the DB."""
    normalized = "|".join(" ".join(part.casefold().split()) for part in parts)
    return hmac.new(settings.VAULT_BLIND_INDEX_KEY, normalized.encode(), hashlib.sha256).hexdigest()


class Encrypted:
    """For models with encrypted columns `<field>_enc`: encrypt and decrypt by field name,
    bound to this table, this row and this field. Subclasses name their data key."""

    pk: Any
    _meta: Any

    def encryption_key(self) -> DataKey | None:
        raise NotImplementedError

    def encrypt_field(self, field: str, value: str | bytes) -> None:
        key = self.encryption_key()
        if key is None:
            raise VaultError("the data key has been destroyed")
        ciphertext = encrypt(key, value, table=self._meta.db_table, row=self.pk, field=field)
        setattr(self, f"{field}_enc", ciphertext)

    def decrypt_field(self, field: str) -> str:
        return self.decrypt_field_bytes(field).decode()

    def decrypt_field_bytes(self, field: str) -> bytes:
        ciphertext = getattr(self, f"{field}_enc")
        if not ciphertext:
            return b""
        return decrypt_bytes(
            self.encryption_key(), ciphertext, table=self._meta.db_table, row=self.pk, field=field
        )
