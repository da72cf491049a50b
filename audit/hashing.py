"""Canonical forms and hashes of events and seals, in Python and, for PostgreSQL, in SQL.

An event is hashed as canonical JSON, then SHA-256: one object with the fixed fields below
in alphabetical order, no spaces, UTF-8, strings escaped as JSON escapes them, occurred_at
as ISO 8601 in UTC with microseconds ("2026-03-01T09:30:00.000000+00:00"). `details`, a
flat object of ids and labels (audit/trail.py), is embedded in the normal form PostgreSQL
gives every jsonb value: keys ordered by length, then bytewise; ", " and ": " between them.
That form comes straight out of the database, so PostgreSQL can hash a row in SQL without
re-sorting it (the sealer and the verifier then move 16 bytes per event, not the event).

Both implementations below produce the same bytes; tests/audit/test_hashing.py holds them
to that, with awkward strings too. The Python one is used on SQLite and by
`audit_verify --independent`, which trusts no function of the database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

# The columns read for hashing, in this order (values_list / SELECT).
EVENT_FIELDS = (
    "id",
    "occurred_at",
    "actor_id",
    "actor_label",
    "agency_id",
    "action",
    "target_type",
    "target_id",
    "family_id",
    "family_ref",
    "purpose",
    "request_id",
    "ip",
    "details",
    "txid",
)

# What a seal's hash covers, and so what its signature covers.
SEAL_FIELDS = (
    "number",
    "sealed_at",
    "basis",
    "fence",
    "after_txid",
    "after_event_id",
    "last_txid",
    "last_event_id",
    "event_count",
    "batch_hash",
    "manifest_hash",
    "previous_hash",
    "key_id",
)

# Covered too since the sealer refuses events dated out of order (audit/chronology.py);
# a seal without them (made before) hashes as it always did, and one that has them
# cannot lose them unseen: its hash would change.
SEAL_FIELDS_CHRONOLOGY = ("high_water", "refused_hash")

GENESIS = "0" * 64  # previous_hash of the first seal
MANIFEST_HASH_BYTES = 8  # per event in the manifest: enough to name it, not to prove it
MANIFEST_ENTRY = 8 + MANIFEST_HASH_BYTES

_string = json.encoder.encode_basestring  # JSON string with escapes; non-ASCII kept, as jsonb
_compact = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def timestamp(moment: datetime | str) -> str:
    """ISO 8601 in UTC with microseconds; SQLite hands over Django's naive UTC text."""
    if isinstance(moment, str):
        # The common forms, by hand: the sealer's Python path does this for every event.
        if len(moment) == 26 and moment[10] == " " and moment[19] == ".":
            return f"{moment[:10]}T{moment[11:]}+00:00"
        if len(moment) == 19 and moment[10] == " ":
            return f"{moment[:10]}T{moment[11:]}.000000+00:00"
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _jsonb_key(item: tuple[str, Any]) -> tuple[int, bytes]:
    key = item[0].encode()
    return len(key), key


def jsonb_text(value: Any) -> str:
    """VALUE as PostgreSQL prints a jsonb value (for the ids and labels record() allows;
    a float, which record() refuses, may print differently)."""
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=_jsonb_key)
        return "{" + ", ".join([f"{_string(key)}: {jsonb_text(item)}" for key, item in items]) + "}"
    if isinstance(value, list):
        return "[" + ", ".join([jsonb_text(item) for item in value]) + "]"
    if kind is float:
        return json.dumps(value)
    raise TypeError(f"not a JSON value: {kind.__name__}")


def _text(value: str | None) -> str:
    return "null" if value is None else _string(value)


def _number(value: int | None) -> str:
    return "null" if value is None else str(value)


def canonical_event(row: Sequence[Any]) -> bytes:
    """ROW holds EVENT_FIELDS in order, as the database returns them; details as the JSON
    text a raw cursor returns, or already decoded."""
    (
        event_id,
        occurred_at,
        actor_id,
        actor_label,
        agency_id,
        action,
        target_type,
        target_id,
        family_id,
        family_ref,
        purpose,
        request_id,
        ip,
        details,
        txid,
    ) = row
    if isinstance(details, str):
        details = json.loads(details)
    return (
        f'{{"action":{_text(action)},"actor_id":{_number(actor_id)},'
        f'"actor_label":{_text(actor_label)},"agency_id":{_number(agency_id)},'
        f'"details":{jsonb_text(details)},"family_id":{_text(family_id)},'
        f'"family_ref":{_text(family_ref)},"id":{_number(event_id)},"ip":{_text(ip)},'
        f'"occurred_at":"{timestamp(occurred_at)}","purpose":{_text(purpose)},'
        f'"request_id":{_text(request_id)},"target_id":{_text(target_id)},'
        f'"target_type":{_text(target_type)},"txid":{_number(txid)}}}'
    ).encode()


def _sql_text(column: str) -> str:
    return f"COALESCE(pg_catalog.to_json({column})::text, 'null')"


def _sql_number(column: str) -> str:
    return f"COALESCE({column}::text, 'null')"


# The same canonical JSON, built by PostgreSQL (to_json escapes strings exactly as JSON
# does; inet prints as its plain address). Functions are schema-qualified so that nobody
# can slip in a look-alike through the search path.
_SQL_CANONICAL = " || ".join(
    [
        """'{"action":'""",
        _sql_text("action"),
        """',"actor_id":'""",
        _sql_number("actor_id"),
        """',"actor_label":'""",
        _sql_text("actor_label"),
        """',"agency_id":'""",
        _sql_number("agency_id"),
        """',"details":'""",
        "details::text",
        """',"family_id":'""",
        _sql_text("family_id"),
        """',"family_ref":'""",
        _sql_text("family_ref"),
        """',"id":'""",
        _sql_number("id"),
        """',"ip":'""",
        _sql_text("ip"),
        """',"occurred_at":"'""",
        """pg_catalog.to_char(occurred_at AT TIME ZONE 'UTC', """
        """'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')""",
        """'","purpose":'""",
        _sql_text("purpose"),
        """',"request_id":'""",
        _sql_text("request_id"),
        """',"target_id":'""",
        _sql_text("target_id"),
        """',"target_type":'""",
        _sql_text("target_type"),
        """',"txid":'""",
        _sql_number("txid"),
        "'}'",
    ]
)
SQL_EVENT_DIGEST = f"pg_catalog.sha256(pg_catalog.convert_to({_SQL_CANONICAL}, 'UTF8'))"


def manifest_entry(event_id: int, digest: bytes) -> bytes:
    return event_id.to_bytes(8, "big", signed=True) + digest[:MANIFEST_HASH_BYTES]


def read_manifest(manifest: bytes) -> list[tuple[int, bytes]]:
    """The (event id, truncated hash) pairs of a manifest, in sealing order."""
    return [
        (int.from_bytes(manifest[at : at + 8], "big", signed=True), manifest[at + 8 : at + 16])
        for at in range(0, len(manifest), MANIFEST_ENTRY)
    ]


def seal_hash(fields: Mapping[str, Any]) -> str:
    """FIELDS holds SEAL_FIELDS, and SEAL_FIELDS_CHRONOLOGY unless the seal predates them
    (high_water None and refused_hash that of no refusal); sealed_at and high_water as
    datetimes, the rest as stored."""
    content = {name: fields[name] for name in SEAL_FIELDS}
    content["sealed_at"] = timestamp(content["sealed_at"])
    high_water = fields.get("high_water")
    refused = fields.get("refused_hash", NOTHING_REFUSED)
    if high_water is not None or refused != NOTHING_REFUSED:
        content["high_water"] = None if high_water is None else timestamp(high_water)
        content["refused_hash"] = refused
    return hashlib.sha256(_compact.encode(content).encode()).hexdigest()


def refused_hash(refused: bytes | None) -> str:
    return hashlib.sha256(refused or b"").hexdigest()


NOTHING_REFUSED = refused_hash(b"")


def stored_seal_hash(seal: Mapping[str, Any]) -> str:
    """The hash of a stored seal's content (SEAL_FIELDS but manifest_hash, high_water,
    manifest and refused, as read from the database): what seal_hash must be."""
    return seal_hash(
        {
            **seal,
            "manifest_hash": manifest_hash(bytes(seal["manifest"])),
            "refused_hash": refused_hash(
                None if seal["refused"] is None else bytes(seal["refused"])
            ),
        }
    )


def manifest_hash(manifest: bytes) -> str:
    return hashlib.sha256(manifest).hexdigest()
