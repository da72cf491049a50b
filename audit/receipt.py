"""The Prüfquittung: a signed receipt of the trail's head that the data-protection officer
downloads from the console and keeps outside Dienstweg. Later,

    manage.py audit_verify --expect-head pruefquittung-siegel-123.json

checks the receipt's signature (with this installation's key, or with the key she noted
from `manage.py audit_public_key`, given as --public-key) and that its head is still in the
chain: whoever removes seals together with their events cannot remove what she keeps.

A receipt is a small JSON file. The signature is Ed25519, with the key that signs the
seals, over DOMAIN and then the compact JSON (keys sorted, UTF-8) of every other field:
the domain keeps a receipt's signature from ever passing for a seal's, and back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import router
from django.utils import timezone

from audit import hashing, signing
from audit.models import AuditSeal
from audit.sealing import SEAL_COLUMNS

KIND = "dienstweg-pruefquittung"
VERSION = 1
DOMAIN = b"dienstweg-pruefquittung-v1\n"
_COMPACT = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
HEX = set("0123456789abcdef")

HINT = (
    "Prüfquittung des Dienstweg-Protokolls: Sie bestätigt mit der Signatur des "
    "Protokollschlüssels, dass das Protokoll zur angegebenen Zeit bis zu diesem Siegel "
    "reichte. Bewahren Sie die Datei außerhalb von Dienstweg auf. Zur Prüfung: "
    "`manage.py audit_verify --expect-head <diese Datei>`, am besten mit dem öffentlichen "
    "Schlüssel aus Ihren Unterlagen (`--public-key`, von `manage.py audit_public_key`). "
    "Fehlt dieses Siegel später in der Kette, wurde das Protokoll danach gekürzt oder ersetzt."
)


class ReceiptError(ValueError):
    """Not a receipt this installation can check; the message is German."""


def _content(receipt: Mapping[str, Any]) -> bytes:
    return (
        DOMAIN
        + _COMPACT.encode(
            {name: value for name, value in receipt.items() if name != "signature"}
        ).encode()
    )


def issue(*, now: datetime | None = None) -> dict[str, Any] | None:
    """A signed receipt of the newest seal; None before the first seal. Only a seal whose
    content and signature hold gets one."""
    alias = router.db_for_read(AuditSeal)
    seal = (
        AuditSeal.objects.using(alias)
        .order_by("-number")
        .values(*SEAL_COLUMNS, "manifest", "refused", "signature")
        .first()
    )
    if seal is None:
        return None
    key = signing.private_key()
    public = key.public_key()
    if (
        seal["key_id"] != signing.key_id(public)
        or hashing.stored_seal_hash(seal) != (seal["seal_hash"])
    ):
        raise ReceiptError(
            f"Siegel {seal['number']} lässt sich nicht bestätigen: `manage.py audit_verify` prüfen."
        )
    try:
        public.verify(bytes.fromhex(seal["signature"]), bytes.fromhex(seal["seal_hash"]))
    except (InvalidSignature, ValueError) as exc:
        raise ReceiptError(
            f"Siegel {seal['number']}: Signatur ungültig, `manage.py audit_verify` prüfen."
        ) from exc
    receipt: dict[str, Any] = {
        "kind": KIND,
        "version": VERSION,
        "seal": seal["number"],
        "seal_hash": seal["seal_hash"],
        "sealed_at": hashing.timestamp(seal["sealed_at"]),
        "last_event_id": seal["last_event_id"],
        "key_id": signing.key_id(public),
        "issued_at": hashing.timestamp(now or timezone.now()),
        "hint": HINT,
    }
    receipt["signature"] = key.sign(_content(receipt)).hex()
    return receipt


def dumps(receipt: Mapping[str, Any]) -> bytes:
    """The receipt as the file the DPO keeps (readable, UTF-8)."""
    return (json.dumps(receipt, indent=2, ensure_ascii=False) + "\n").encode()


def loads(data: bytes | str) -> dict[str, Any]:
    """A receipt read from its file; ReceiptError if it is none."""
    try:
        receipt = json.loads(data)
    except ValueError as exc:
        raise ReceiptError("keine Prüfquittung (kein JSON)") from exc
    if not isinstance(receipt, dict) or receipt.get("kind") != KIND:
        raise ReceiptError("keine Prüfquittung von Dienstweg")
    if receipt.get("version") != VERSION:
        raise ReceiptError(f"Prüfquittung der unbekannten Fassung {receipt.get('version')!r}")
    seal_hash = receipt.get("seal_hash")
    if (
        not isinstance(receipt.get("seal"), int)
        or not isinstance(seal_hash, str)
        or len(seal_hash) != 64
        or not set(seal_hash) <= HEX
        or not isinstance(receipt.get("signature"), str)
    ):
        raise ReceiptError("Prüfquittung unvollständig")
    return receipt


def problem(receipt: Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    """Why the receipt's signature does not hold with KEYS (by key id); None if it does."""
    key = keys.get(str(receipt.get("key_id")))
    if key is None:
        return f"mit dem Schlüssel {receipt.get('key_id')} signiert, den diese Prüfung nicht kennt"
    try:
        key.verify(bytes.fromhex(str(receipt["signature"])), _content(receipt))
    except (InvalidSignature, ValueError):
        return "Signatur ungültig: die Quittung wurde verändert oder stammt nicht von hier"
    return None
