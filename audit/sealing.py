"""The sealer: appends signed, chained seals over the committed events not yet sealed.

It reads and hashes a batch outside any transaction and then appends the seal in a short
one, so writers never wait for it (on SQLite the write lock is held for one INSERT). Which
events are final, and their order, is decided in audit/ordering.py. Two sealers racing
cannot fork the chain: seal numbers and previous hashes are unique, the loser retries.

Each seal's head is anchored outside the database once it has committed (audit/anchor.py),
and no seal is made on top of a database whose newest seals do not continue the anchored
head. Events dated before what was already sealed are refused (audit/chronology.py): they
stay in the batch, are listed in the seal, and each refusal is recorded
(`audit.event_refused`), so that the console shows it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import IntegrityError, close_old_connections, router, transaction
from django.utils import timezone

from audit import anchor, batches, chronology, hashing, ordering, signing, trail
from audit.audit_actions import AUDIT_EVENT_REFUSED
from audit.models import AuditEvent, AuditSeal

logger = logging.getLogger(__name__)

BATCH_SIZE = 10_000
# PostgreSQL: batches hashed at once on connections of their own, ahead of the one sealed.
READ_AHEAD = 2
_RETRIES = 3
ACTOR = "system:audit_seal"
REASONS = {chronology.BACKDATED: "backdated", chronology.FUTURE: "future"}

# The stored fields of a seal that the sealer and the verifier read back.
SEAL_COLUMNS = (
    *(f for f in hashing.SEAL_FIELDS if f != "manifest_hash"),
    "high_water",
    "seal_hash",
)


def seal_pending(*, batch_size: int = BATCH_SIZE, max_seals: int | None = None) -> list[AuditSeal]:
    """Seal every final, unsealed event, in batches of at most BATCH_SIZE events."""
    seals: list[AuditSeal] = []
    conflicts = 0
    alias = router.db_for_write(AuditSeal)
    connection = transaction.get_connection(alias)
    ahead = None
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        ahead = batches.ReadAhead(
            alias, ordering.basis(connection), limit=batch_size, depth=READ_AHEAD
        )
    with ahead or contextlib.nullcontext():
        while max_seals is None or len(seals) < max_seals:
            try:
                seal = seal_next(batch_size=batch_size, ahead=ahead)
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


def seal_next(
    *, batch_size: int = BATCH_SIZE, ahead: batches.ReadAhead | None = None
) -> AuditSeal | None:
    """Append one seal over the next batch and anchor its head; None when no final event
    awaits sealing. AHEAD: where the next batches are being hashed already. Raises
    anchor.AnchorError when the anchor cannot be read or written, anchor.AnchorMismatch
    when the database does not continue the anchored head."""
    alias = router.db_for_write(AuditSeal)
    connection = transaction.get_connection(alias)
    if connection.in_atomic_block:
        # Inside a transaction the sealer would see that transaction's own uncommitted
        # events (SQLite) or be fenced by it (PostgreSQL); it keeps its own transactions.
        raise RuntimeError("the audit sealer must not run inside a transaction")
    # Held until the head is written: the file lists the seals in order, each once.
    with anchor.locked():
        return _seal_locked(alias, connection, batch_size, ahead)


def _seal_locked(
    alias: str, connection: Any, batch_size: int, ahead: batches.ReadAhead | None
) -> AuditSeal | None:
    basis = ordering.basis(connection)
    previous = (
        AuditSeal.objects.using(alias)
        .order_by("-number")
        .values(*SEAL_COLUMNS, "signature")
        .first()
    )
    catch_up(alias, previous)
    after: ordering.Position | None = None
    if previous is not None:
        after = ordering.position(basis, previous["last_txid"], previous["last_event_id"])
    if ahead is None:
        fence = ordering.fence(connection, basis)
        batch = batches.read(
            AuditEvent.objects.using(alias).filter(
                ordering.below(basis, fence), ordering.after(basis, after)
            ),
            basis,
            limit=batch_size,
        )
    else:
        batch, fence = ahead.batch(after, lambda: ordering.fence(connection, basis))
    if batch.last is None:
        return None

    now = timezone.now()
    judgement = chronology.judge(
        AuditEvent.objects.using(alias).filter(
            ordering.after(basis, after), ordering.up_to(basis, batch.last)
        ),
        basis,
        high_water=_high_water(previous),
        now=now,
    )
    refused = chronology.pack(judgement.refused)
    key = signing.private_key()
    number = 1 if previous is None else previous["number"] + 1
    fields: dict[str, Any] = {
        "number": number,
        "sealed_at": now,
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
        # The first seal's batch has no mark before it; one seal later there is one.
        "high_water": judgement.high_water or now,
        "refused_hash": hashing.refused_hash(refused),
    }
    digest_hex = hashing.seal_hash(fields)
    # Recomputed from the manifest and the refused entries themselves when verifying.
    del fields["manifest_hash"], fields["refused_hash"]
    with transaction.atomic(using=alias):
        seal = AuditSeal.objects.using(alias).create(
            **fields,
            manifest=batch.manifest,
            refused=refused,
            seal_hash=digest_hex,
            signature=key.sign(bytes.fromhex(digest_hex)).hex(),
        )
        for refusal in judgement.refused:
            # Named in the console's status; the seal's own list is what verify reads.
            trail.record(
                ACTOR,
                AUDIT_EVENT_REFUSED,
                target=("audit.event", refusal.event_id),
                details={
                    "seal": number,
                    "event": refusal.event_id,
                    "reason": REASONS[refusal.reason],
                },
            )
    if judgement.refused:
        logger.warning(
            "audit sealer: seal %s refused %s event(s) dated out of order: %s",
            number,
            len(judgement.refused),
            ", ".join(str(refusal.event_id) for refusal in judgement.refused[:20]),
        )
    # After the commit: a head is never anchored for a seal the database does not hold.
    # Should this fail, the seal stays unanchored and the next round anchors it first.
    anchor.append(anchor.Head.of({name: getattr(seal, name) for name in anchor.HEAD_COLUMNS}))
    return seal


def _high_water(previous: dict[str, Any] | None) -> datetime | None:
    """The previous seal's mark; a seal made before marks existed: its own time, which
    no event it covers can be younger than."""
    if previous is None:
        return None
    return previous["high_water"] or previous["sealed_at"]


def catch_up(alias: str, newest: dict[str, Any] | None) -> None:
    """Make the anchor hold the database's newest seal (NEWEST), before sealing on top of
    it. The first time, the database's head is adopted; seals that committed but were not
    anchored (the write failed) are anchored now, each checked to continue the anchored
    chain and to carry this installation's signature. Raises anchor.AnchorMismatch when the
    database does not continue the anchored head: then it was shortened or replaced."""
    last = anchor.last_head()
    if last is None:
        if newest is not None:
            _check_signed(newest)
            anchor.append(anchor.Head.of(newest, adopted=True))
            logger.warning(
                "audit sealer: anchoring begins with the database's seal %s (adopted)",
                newest["number"],
            )
        return
    if newest is not None and newest["number"] == last.number:
        if newest["seal_hash"] != last.seal_hash:
            raise anchor.AnchorMismatch(_mismatch(last, "hat unter dieser Nummer ein anderes"))
        return
    if newest is None or newest["number"] < last.number:
        found = "hat kein Siegel" if newest is None else f"endet bei Siegel {newest['number']}"
        raise anchor.AnchorMismatch(_mismatch(last, found))
    stored = (
        AuditSeal.objects.using(alias)
        .filter(number=last.number)
        .values_list("seal_hash", flat=True)
        .first()
    )
    if stored != last.seal_hash:
        found = "hat kein Siegel dieser Nummer" if stored is None else "hat dort ein anderes"
        raise anchor.AnchorMismatch(_mismatch(last, found))
    previous_hash = last.seal_hash
    missing = (
        AuditSeal.objects.using(alias)
        .filter(number__gt=last.number)
        .order_by("number")
        .values(*anchor.HEAD_COLUMNS)
    )
    for number, seal in enumerate(missing, start=last.number + 1):
        if seal["number"] != number or seal["previous_hash"] != previous_hash:
            raise anchor.AnchorMismatch(
                f"Siegel {seal['number']} schließt nicht an das verankerte Siegel "
                f"{number - 1} an; es wird nicht weiter versiegelt. "
                "`manage.py audit_verify` nennt den Befund."
            )
        _check_signed(seal)
        anchor.append(anchor.Head.of(seal))
        previous_hash = seal["seal_hash"]


def _check_signed(seal: dict[str, Any]) -> None:
    key = signing.public_key()
    if not anchor.Head.of(seal).signed_by({signing.key_id(key): key}):
        raise anchor.AnchorMismatch(
            f"Siegel {seal['number']} trägt keine gültige Signatur dieser Installation und "
            "wird nicht verankert; es wird nicht weiter versiegelt. "
            "`manage.py audit_verify` nennt den Befund."
        )


def _mismatch(last: anchor.Head, found: str) -> str:
    return (
        f"Anker und Datenbank passen nicht zusammen: außerhalb der Datenbank ist Siegel "
        f"{last.number} (Hash {last.seal_hash[:16]}…) verankert, die Datenbank {found}. "
        "Es wird nicht weiter versiegelt, bis das geklärt ist; `manage.py audit_verify` nennt "
        f"den Befund. Eine neu angelegte Datenbank braucht ein neues Anker-Verzeichnis "
        f"(jetzt {anchor.directory()}); die Demo setzt `make clean` ganz zurück."
    )


def seal_loop(*, interval: float, stop: Callable[[], bool], batch_size: int = BATCH_SIZE) -> int:
    """Seal every INTERVAL seconds until STOP() is true; return the number of seals made."""
    made = 0
    while not stop():
        close_old_connections()
        try:
            made += len(seal_pending(batch_size=batch_size))
        except anchor.AnchorError as exc:
            # Said in German for the operator, each round until it is resolved.
            logger.error("audit sealer: %s", exc)
        except Exception:
            # A database restart must not end the sealer; the next round tries again.
            logger.exception("audit sealer: round failed")
        deadline = time.monotonic() + interval
        while not stop() and time.monotonic() < deadline:
            time.sleep(min(0.5, interval))
    return made
