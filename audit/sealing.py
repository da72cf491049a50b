"""The sealer: appends signed, chained seals over the committed events not yet sealed.

It reads and hashes a batch outside any transaction and then appends the seal in a short
one, so writers never wait for it (on SQLite the write lock is held for one INSERT). Which
events are final, and their order, is decided in audit/ordering.py. Two sealers racing
cannot fork the chain: seal numbers and previous hashes are unique, the loser retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, close_old_connections, router, transaction
from django.utils import timezone

from audit import batches, hashing, ordering, signing
from audit.models import AuditEvent, AuditSeal

logger = logging.getLogger(__name__)

BATCH_SIZE = 10_000
_RETRIES = 3

# The stored fields of a seal that the sealer and the verifier read back.
SEAL_COLUMNS = (*(f for f in hashing.SEAL_FIELDS if f != "manifest_hash"), "seal_hash")


def seal_pending(*, batch_size: int = BATCH_SIZE, max_seals: int | None = None) -> list[AuditSeal]:
    """Seal every final, unsealed event, in batches of at most BATCH_SIZE events."""
    seals: list[AuditSeal] = []
    conflicts = 0
    while max_seals is None or len(seals) < max_seals:
        try:
            seal = seal_next(batch_size=batch_size)
        except IntegrityError:
            # Another sealer appended first; start again from its seal.
            conflicts += 1
            if conflicts > _RETRIES:
                raise
            continue
        if seal is None:
            break
        seals.append(seal)
    return seals


def seal_next(*, batch_size: int = BATCH_SIZE) -> AuditSeal | None:
    """Append one seal over the next batch; None when no final event awaits sealing."""
    alias = router.db_for_write(AuditSeal)
    connection = transaction.get_connection(alias)
    if connection.in_atomic_block:
        # Inside a transaction the sealer would see that transaction's own uncommitted
        # events (SQLite) or be fenced by it (PostgreSQL); it keeps its own transactions.
        raise RuntimeError("the audit sealer must not run inside a transaction")
    basis = ordering.basis(connection)
    previous = AuditSeal.objects.using(alias).order_by("-number").values(*SEAL_COLUMNS).first()
    after: ordering.Position | None = None
    if previous is not None:
        after = ordering.position(basis, previous["last_txid"], previous["last_event_id"])
    fence = ordering.fence(connection, basis)
    batch = batches.read(
        AuditEvent.objects.using(alias).filter(
            ordering.below(basis, fence), ordering.after(basis, after)
        ),
        basis,
        limit=batch_size,
    )
    if batch.last is None:
        return None

    key = signing.private_key()
    fields: dict[str, Any] = {
        "number": 1 if previous is None else previous["number"] + 1,
        "sealed_at": timezone.now(),
        "basis": basis,
        "fence": fence,
        "after_txid": None if after is None else after[0],
        "after_event_id": None if after is None else after[1],
        "last_txid": batch.last[0],
        "last_event_id": batch.last[1],
        "event_count": batch.count,
        "batch_hash": batch.batch_hash,
        "manifest_hash": hashing.manifest_hash(batch.manifest),
        "previous_hash": hashing.GENESIS if previous is None else previous["seal_hash"],
        "key_id": signing.key_id(key.public_key()),
    }
    digest_hex = hashing.seal_hash(fields)
    del fields["manifest_hash"]  # recomputed from the manifest itself when verifying
    with transaction.atomic(using=alias):
        return AuditSeal.objects.using(alias).create(
            **fields,
            manifest=batch.manifest,
            seal_hash=digest_hex,
            signature=key.sign(bytes.fromhex(digest_hex)).hex(),
        )


def seal_loop(*, interval: float, stop: Callable[[], bool], batch_size: int = BATCH_SIZE) -> int:
    """Seal every INTERVAL seconds until STOP() is true; return the number of seals made."""
    made = 0
    while not stop():
        close_old_connections()
        try:
            made += len(seal_pending(batch_size=batch_size))
        except Exception:
            # A database restart must not end the sealer; the next round tries again.
            logger.exception("audit sealer: round failed")
        deadline = time.monotonic() + interval
        while not stop() and time.monotonic() < deadline:
            time.sleep(min(0.5, interval))
    return made
