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
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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


class ReadAhead:
    """Hashes the next batches of the sealing order on other connections while the sealer
    judges, signs and stores the one in hand (PostgreSQL hashes rows on one core per
    connection). Each batch is read exactly as the sealer reads it alone: the first LIMIT
    final events after a position, below a fence; only where it starts is worked out ahead.

    Events below a fence are final (audit/ordering.py), so a batch hashed ahead is still
    the batch after its start whenever the sealer comes to it; a start the sealer does not
    reach (another sealer appended first) is simply dropped."""

    def __init__(self, alias: str, basis: str, *, limit: int, depth: int = 2) -> None:
        self.alias, self.basis, self.limit, self.depth = alias, basis, limit, depth
        self.pool = ThreadPoolExecutor(max_workers=depth, thread_name_prefix="audit-read")
        self.fence = 0
        # Start position (None: the very first) -> the batch after it, in sealing order.
        self.pending: dict[ordering.Position | None, Future[Batch]] = {}
        self.planned: ordering.Position | None = None  # start of the last batch submitted
        self.exhausted = False  # no further full batch below the fence

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        for future in self.pending.values():
            future.cancel()
        self.pool.shutdown(wait=True)

    def batch(self, after: ordering.Position | None, fence: Callable[[], int]) -> tuple[Batch, int]:
        """The batch after AFTER and the fence it was read below; FENCE() gives a new one
        when nothing was read ahead from AFTER."""
        future = self.pending.pop(after, None)
        if future is None:
            for stale in self.pending.values():
                stale.cancel()
            self.pending.clear()
            self.fence, self.exhausted = fence(), False
            future = self._submit(after)
        self._plan()
        return future.result(), self.fence

    def _submit(self, after: ordering.Position | None) -> Future[Batch]:
        future = self.pool.submit(self._read, after)
        self.pending[after] = future
        self.planned = after
        return future

    def _plan(self) -> None:
        while not self.exhausted and len(self.pending) < self.depth:
            # Where the batch after the last planned one starts: its LIMIT-th event.
            end = (
                self._events(self.planned)
                .order_by(*ordering.order_by(self.basis))
                .values_list("txid", "id")[self.limit - 1 : self.limit]
                .first()
            )
            if end is None:
                self.exhausted = True  # that batch is the last one below the fence
                return
            self._submit(ordering.position(self.basis, *end))

    def _events(self, after: ordering.Position | None) -> QuerySet[AuditEvent]:
        return AuditEvent.objects.using(self.alias).filter(
            ordering.below(self.basis, self.fence), ordering.after(self.basis, after)
        )

    def _read(self, after: ordering.Position | None) -> Batch:
        try:
            return read(self._events(after), self.basis, limit=self.limit)
        finally:
            # Each worker thread has its own connection: back to the pool once read.
            connections[self.alias].close()
