"""Hash a run of events in sealing order: the batch hash, the manifest, the last position.

The sealer and the verifier both read events only through here. On PostgreSQL the
database hashes each row and concatenates id and hash (hashing.SQL_EVENT_DIGEST), so one
query per batch returns 40 bytes per event and Python never builds a row. On SQLite, or
when asked not to trust the database's functions, Python hashes the rows; they are read
with a plain cursor from the SQL of a values_list() query, in chunks, because Django's
per-row converters would cost more than the hashing itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db import connections
from django.db.models import QuerySet

from audit import hashing, ordering
from audit.models import AuditEvent

CHUNK_SIZE = 2_000
_TXID = hashing.EVENT_FIELDS.index("txid")
_RECORD = 8 + 32  # id and SHA-256, as PostgreSQL hands them over


@dataclass(frozen=True)
class Batch:
    count: int
    batch_hash: str  # SHA-256 over each event's id (8 bytes) and full hash, in order
    manifest: bytes  # event id and truncated hash, 16 bytes per event, in order
    last: ordering.Position | None  # None when the batch is empty

    @property
    def entries(self) -> list[tuple[int, bytes]]:
        return hashing.read_manifest(self.manifest)


def read(
    events: QuerySet[AuditEvent],
    basis: str,
    *,
    limit: int | None = None,
    in_database: bool | None = None,
) -> Batch:
    """Hash EVENTS (already filtered to a range) in sealing order, at most LIMIT of them.
    IN_DATABASE: let PostgreSQL hash the rows; by default wherever it can."""
    alias = events.db
    events = events.order_by(*ordering.order_by(basis))
    if limit is not None:
        events = events[:limit]
    if in_database is None:
        in_database = connections[alias].vendor == "postgresql"
    if in_database:
        return _read_in_database(events, basis, alias)
    return _read_in_python(events, basis, alias)


def _read_in_database(events: QuerySet[AuditEvent], basis: str, alias: str) -> Batch:
    # Pick (and limit) the rows first, hash only those: a digest in the same SELECT as the
    # ORDER BY ... LIMIT would be computed for every candidate row before the sort.
    inner, params = events.values_list(*hashing.EVENT_FIELDS).query.sql_with_params()
    columns = ", ".join(hashing.EVENT_FIELDS)
    # One ordered aggregate (a second one would sort again): per event its id and full
    # hash, 40 bytes. They are what the batch hash covers, and the first 16 bytes of each
    # are the event's manifest entry.
    order = ", ".join(ordering.order_by(basis))
    sql = (  # Django's SQL and our constants only
        "SELECT count(*), max(txid), "  # noqa: S608
        "pg_catalog.string_agg(pg_catalog.int8send(id) || digest, ''::bytea "
        f"ORDER BY {order}) "
        f"FROM (SELECT id, txid, {hashing.SQL_EVENT_DIGEST} AS digest "
        f"FROM ({inner}) AS event ({columns})) AS batch"
    )
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        count, last_txid, records = cursor.fetchone()
    if not count:
        return Batch(0, hashlib.sha256().hexdigest(), b"", None)
    records = bytes(records)
    entry = hashing.MANIFEST_ENTRY
    manifest = b"".join([records[at : at + entry] for at in range(0, len(records), _RECORD)])
    last_id = int.from_bytes(records[-_RECORD : -_RECORD + 8], "big", signed=True)
    position = ordering.position(basis, last_txid, last_id)
    return Batch(count, hashlib.sha256(records).hexdigest(), manifest, position)


def _read_in_python(events: QuerySet[AuditEvent], basis: str, alias: str) -> Batch:
    sql, params = events.values_list(*hashing.EVENT_FIELDS).query.sql_with_params()
    hasher = hashlib.sha256()
    manifest: list[bytes] = []
    last: tuple[object, ...] | None = None
    canonical, sha256, entry = hashing.canonical_event, hashlib.sha256, hashing.manifest_entry
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK_SIZE):
            for row in rows:
                digest = sha256(canonical(row)).digest()
                hasher.update(row[0].to_bytes(8, "big", signed=True) + digest)
                manifest.append(entry(row[0], digest))
            last = rows[-1]
    if last is None:
        return Batch(0, hasher.hexdigest(), b"", None)
    position = ordering.position(basis, last[_TXID], last[0])  # type: ignore[arg-type]
    return Batch(len(manifest), hasher.hexdigest(), b"".join(manifest), position)
