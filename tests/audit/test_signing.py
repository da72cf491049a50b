"""The seal key: a raw base64 key as given, any other long value hashed into one; the DPO
gets the public key from audit_public_key."""

from __future__ import annotations

import base64
import hashlib
import secrets
from io import StringIO

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from audit import signing
from audit.checks import signing_key_usable


def raw_public(raw: bytes) -> bytes:
    return signing.public_bytes(Ed25519PrivateKey.from_private_bytes(raw).public_key())


@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_base64_raw_key_is_used_as_it_is(encode) -> None:
    raw = secrets.token_bytes(32)
    value = encode(raw).decode()
    assert signing.public_bytes(signing.public_key(value)) == raw_public(raw)
    assert signing.public_bytes(signing.public_key(value.rstrip("="))) == raw_public(raw)


def test_generated_development_secret_is_hashed_into_a_key() -> None:
    value = secrets.token_urlsafe(50)  # what secret() generates in var/dev-secrets/
    expected = raw_public(hashlib.sha256(value.encode()).digest())
    assert signing.public_bytes(signing.public_key(value)) == expected
    assert signing.public_bytes(signing.public_key(value)) == expected  # deterministic


def test_short_value_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="DIENSTWEG_AUDIT_SIGNING_KEY"):
        signing.private_key("geheim")


def test_system_check_reports_an_unusable_key(settings) -> None:
    settings.AUDIT_SIGNING_KEY = "zu-kurz"
    assert [message.id for message in signing_key_usable()] == ["audit.E002"]
    settings.AUDIT_SIGNING_KEY = signing.new_private_key()
    assert signing_key_usable() == []


def test_key_id_is_a_fingerprint_of_the_public_key() -> None:
    key = signing.public_key(signing.new_private_key())
    digest = hashlib.sha256(signing.public_bytes(key)).hexdigest()
    assert signing.key_id(key) == f"ed25519:{digest[:16]}"


def test_audit_public_key_prints_the_configured_public_key(signing_key: str) -> None:
    out = StringIO()
    call_command("audit_public_key", stdout=out)
    lines = out.getvalue().splitlines()
    public = signing.public_key(signing_key)
    assert lines[0] == f"Schlüssel-ID: {signing.key_id(public)}"
    assert lines[1] == f"Öffentlicher Schlüssel (Base64): {signing.public_base64(public)}"
    assert lines[2] == "-----BEGIN PUBLIC KEY-----"
    assert signing_key not in out.getvalue()


def test_audit_public_key_generates_a_usable_private_key() -> None:
    out = StringIO()
    call_command("audit_public_key", "--generate", stdout=out)
    first = out.getvalue().splitlines()[0]
    name, value = first.split("=", 1)
    assert name == "DIENSTWEG_AUDIT_SIGNING_KEY"
    assert len(base64.b64decode(value)) == 32
    assert signing.load_public_key(out.getvalue().splitlines()[2].rsplit(" ", 1)[1]) is not None


@pytest.mark.parametrize("text", ["kein-base64!", base64.b64encode(b"x" * 31).decode()])
def test_malformed_public_key_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        signing.load_public_key(text)
