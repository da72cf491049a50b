"""The Bestätigung of an agreement: the responsible agency's binding commitment, signed by
the platform with the key that signs the audit trail's seals (audit/signing.py).

A receipt is a small JSON file that the agency (or the coach) can keep outside Dienstweg.
It names the agreement, the conference, the family's reference, the agency and who
confirmed it when, the due date, and the SHA-256 of the agreement's text, not the text
itself (it holds personal data; the protocol and the conference page show it, and
check() tells whether a text is the one confirmed). The signature is Ed25519 over DOMAIN
and then the compact JSON (keys sorted, UTF-8) of every other field: the domain keeps a
receipt's signature from ever passing for a seal's or a Prüfquittung's, and back.

Later, `manage.py agreement_verify <receipt.json>` (or the conference page) checks it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit import signing
from dienstweg.models import Agency, User

KIND = "dienstweg-vereinbarung"
VERSION = 1
DOMAIN = b"dienstweg-vereinbarung-v1\n"
_COMPACT = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
HINT = (
    "Bestätigung einer Vereinbarung aus einer Familienkonferenz, signiert von Dienstweg. "
    "Sie belegt, wer die Vereinbarung wann für welche Stelle verbindlich bestätigt hat. "
    "Der Text der Vereinbarung steht nicht in der Datei, nur seine Prüfsumme (what_sha256). "
    "Zur Prüfung: `manage.py agreement_verify <diese Datei>`."
)
FIELDS = (
    "kind",
    "version",
    "agreement",
    "conference",
    "number",
    "family",
    "agency",
    "agency_name",
    "confirmed_by",
    "confirmed_by_name",
    "confirmed_at",
    "due_on",
    "what_sha256",
    "key_id",
)


class ReceiptError(ValueError):
    """Not a receipt of an agreement; the message is German."""


def text_hash(what: str) -> str:
    return hashlib.sha256(what.encode()).hexdigest()


def _content(receipt: Mapping[str, Any]) -> bytes:
    return DOMAIN + _COMPACT.encode({name: receipt[name] for name in FIELDS}).encode()


def issue(
    *,
    agreement_id: str,
    conference_id: str,
    number: int,
    family_reference: str,
    agency: Agency,
    by: User,
    at: datetime,
    due_on: str,
    what: str,
) -> dict[str, Any]:
    """The signed receipt of a confirmation."""
    key = signing.private_key()
    receipt: dict[str, Any] = {
        "kind": KIND,
        "version": VERSION,
        "agreement": agreement_id,
        "conference": conference_id,
        "number": number,
        "family": family_reference,
        "agency": agency.pk,
        "agency_name": agency.name,
        "confirmed_by": by.pk,
        "confirmed_by_name": by.full_name,
        "confirmed_at": at.isoformat(),
        "due_on": due_on,
        "what_sha256": text_hash(what),
        "key_id": signing.key_id(key.public_key()),
    }
    receipt["signature"] = key.sign(_content(receipt)).hex()
    receipt["hint"] = HINT
    return receipt


def dumps(receipt: Mapping[str, Any]) -> bytes:
    """The receipt as the file one keeps (readable, UTF-8)."""
    return (json.dumps(receipt, indent=2, ensure_ascii=False) + "\n").encode()


def loads(data: bytes | str) -> dict[str, Any]:
    """A receipt read from its file; ReceiptError if it is none."""
    try:
        receipt = json.loads(data)
    except ValueError as exc:
        raise ReceiptError("keine Bestätigung (kein JSON)") from exc
    if not isinstance(receipt, dict) or receipt.get("kind") != KIND:
        raise ReceiptError("keine Bestätigung einer Vereinbarung von Dienstweg")
    if receipt.get("version") != VERSION:
        raise ReceiptError(f"Bestätigung der unbekannten Fassung {receipt.get('version')!r}")
    if any(name not in receipt for name in FIELDS) or not isinstance(receipt.get("signature"), str):
        raise ReceiptError("Bestätigung unvollständig")
    return receipt


def problem(
    receipt: Mapping[str, Any],
    *,
    key: Ed25519PublicKey | None = None,
    what: str | None = None,
) -> str | None:
    """Why the receipt does not hold (its signature with KEY, by default this
    installation's; the text WHAT, if given, against its checksum); None if it does."""
    key = key or signing.public_key()
    if receipt.get("key_id") != signing.key_id(key):
        return f"mit dem Schlüssel {receipt.get('key_id')} signiert, den diese Prüfung nicht kennt"
    try:
        key.verify(bytes.fromhex(str(receipt["signature"])), _content(receipt))
    except (InvalidSignature, ValueError, KeyError):
        return "Signatur ungültig: die Bestätigung wurde verändert oder stammt nicht von hier"
    if what is not None and text_hash(what) != receipt["what_sha256"]:
        return "Der Text der Vereinbarung ist nicht der bestätigte"
    return None
