"""The Ed25519 key that signs the seals, from settings.AUDIT_SIGNING_KEY.

The variable DIENSTWEG_AUDIT_SIGNING_KEY (or its _FILE) holds the base64 of the raw
32-byte private key (generate one with `manage.py audit_public_key --generate`). Any other
value of at least 32 characters, such as the random token that DEBUG generates in
var/dev-secrets/, is turned into a key deterministically: the SHA-256 of the value is the
private key. The private key never reaches the database; each seal stores key_id, a
fingerprint of the public key, which the DPO gets from `manage.py audit_public_key`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEY_BYTES = 32
MIN_DERIVED_LENGTH = 32  # a shorter passphrase would make a guessable key


def _raw_key(value: str) -> bytes | None:
    """The 32 bytes of a base64 (standard or URL-safe) raw key, else None."""
    text = value.strip()
    text += "=" * (-len(text) % 4)
    for altchars in (b"+/", b"-_"):
        try:
            raw = base64.b64decode(text, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(raw) == KEY_BYTES:
            return raw
    return None


def private_key(value: str | None = None) -> Ed25519PrivateKey:
    """The signing key from VALUE, by default settings.AUDIT_SIGNING_KEY."""
    text = settings.AUDIT_SIGNING_KEY if value is None else value
    raw = _raw_key(text)
    if raw is None:
        if len(text) < MIN_DERIVED_LENGTH:
            raise ImproperlyConfigured(
                "DIENSTWEG_AUDIT_SIGNING_KEY must be the base64 of a raw 32-byte Ed25519 key "
                f"or a random value of at least {MIN_DERIVED_LENGTH} characters."
            )
        raw = hashlib.sha256(text.encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key(value: str | None = None) -> Ed25519PublicKey:
    return private_key(value).public_key()


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_base64(key: Ed25519PublicKey) -> str:
    return base64.b64encode(public_bytes(key)).decode()


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint of the public key, stored in every seal."""
    return "ed25519:" + hashlib.sha256(public_bytes(key)).hexdigest()[:16]


def load_public_key(text: str) -> Ed25519PublicKey:
    """A public key given as base64 of its 32 raw bytes (as audit_public_key prints it)."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("kein Base64") from exc
    if len(raw) != KEY_BYTES:
        raise ValueError(f"{len(raw)} statt {KEY_BYTES} Bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def new_private_key() -> str:
    """A fresh private key in the form DIENSTWEG_AUDIT_SIGNING_KEY expects."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()
