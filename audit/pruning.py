"""The one deletion the audit trail allows: expired events that are already sealed, removed
behind a signed checkpoint from which `manage.py audit_verify` continues.

    expired = retention.expired_q()
    count_removable(expired)            # what a dry run reports
    remove_expired(expired, by=user)    # Removal(checkpoint, removed, seals)

Seal by seal, the events a seal covers are re-hashed and checked against the seal (or its
latest checkpoint entry); if any of them was changed, deleted or inserted, nothing is
removed (PruningRefused): a checkpoint must never launder tampering. Then the survivors of
each touched seal are hashed, and one transaction appends the checkpoint, takes the permit
that the database's DELETE trigger asks for (migration 0004), deletes the expired events,
gives the permit back and records `audit.events_removed`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import IntegrityError, connections, router, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from audit import batches, hashing, ordering, signing, trail, verify
from audit.audit_actions import AUDIT_EVENTS_REMOVED
from audit.models import (
    AuditCheckpoint,
    AuditEvent,
    AuditPrunePermit,
    AuditSeal,
    CheckpointEntry,
)
from audit.sealing import SEAL_COLUMNS

# What the chain check reads of every seal (no manifest: that is read per touched seal).
_CHAIN_COLUMNS = (
    "id",
    "number",
    "after_txid",
    "after_event_id",
    "last_txid",
    "last_event_id",
    "previous_hash",
    "seal_hash",
)


class PruningRefused(Exception):
    """Nothing was removed; the message (German) says why, FINDINGS what verify found."""

    def __init__(self, message: str, findings: Sequence[verify.Finding] = ()) -> None:
        super().__init__(message)
        self.findings = list(findings)


@dataclass(frozen=True)
class Removal:
    checkpoint: AuditCheckpoint | None  # None when nothing was removable
    removed: int  # events removed
    seals: int  # seals whose events were touched


@dataclass
class _Plan:
    entries: list[CheckpointEntry] = field(default_factory=list)
    removed: int = 0


def removable(expired: Q) -> QuerySet[AuditEvent]:
    """The events matching EXPIRED that may be removed: those already sealed (an unsealed
    event is kept until a seal covers it, so that no event leaves the trail unattested)."""
    alias = router.db_for_write(AuditEvent)
    basis = ordering.basis(connections[alias])
    head = _newest_seal(alias)
    events = AuditEvent.objects.using(alias)
    if head is None:
        return events.none()
    return events.filter(expired).filter(ordering.up_to(basis, _last(basis, head)))


def count_removable(expired: Q) -> int:
    return removable(expired).count()


def remove_expired(
    expired: Q,
    *,
    by: trail.Actor = "system:retention",
    progress: Callable[[int, int], None] | None = None,
    public_keys: Sequence[Ed25519PublicKey] | None = None,
) -> Removal:
    """Remove the sealed events matching EXPIRED, leaving a signed checkpoint; PROGRESS is
    called with (seals checked, seals to check). Raises PruningRefused, removing nothing,
    when a seal it would touch does not verify (against PUBLIC_KEYS, by default this
    installation's) or the trail changes meanwhile."""
    alias = router.db_for_write(AuditEvent)
    connection = transaction.get_connection(alias)
    if connection.in_atomic_block:
        # As the sealer: inside a transaction it would hash that transaction's own view,
        # and the checkpoint must commit on its own, with its deletion.
        raise RuntimeError("audit pruning must not run inside a transaction")
    basis = ordering.basis(connection)
    seals = list(AuditSeal.objects.using(alias).order_by("number").values(*_CHAIN_COLUMNS))
    if not seals:
        return Removal(None, 0, 0)
    head = _last(basis, seals[-1])
    report = verify.Report()
    _check_chain(report, basis, seals)
    keys = verify.keyring(public_keys)
    attested = verify.check_checkpoints(report, alias, keys)
    _refuse_on_findings(report)
    previous = (report.checkpoint_number, report.checkpoint_hash) if report.checkpoints else None

    touched = _touched_seals(alias, basis, expired, seals, head)
    plan = _Plan()
    if progress is not None:
        progress(0, len(touched))
    for done, seal_id in enumerate(touched, start=1):
        _plan_seal(plan, report, alias, basis, expired, seal_id, attested, keys)
        if progress is not None:
            progress(done, len(touched))
    if not plan.entries:
        return Removal(None, 0, 0)
    return _remove(plan, alias, basis, expired, head, previous, by)


def _newest_seal(alias: str) -> dict[str, Any] | None:
    newest = (
        AuditSeal.objects.using(alias)
        .order_by("-number")
        .values("number", "last_txid", "last_event_id")
        .first()
    )
    return None if newest is None else dict(newest)


def _last(basis: str, seal: dict[str, Any]) -> ordering.Position:
    return ordering.position(basis, seal["last_txid"], seal["last_event_id"])


def _after(basis: str, seal: dict[str, Any]) -> ordering.Position | None:
    if seal["after_event_id"] is None:
        return None
    return ordering.position(basis, seal["after_txid"], seal["after_event_id"])


def _check_chain(report: verify.Report, basis: str, seals: list[dict[str, Any]]) -> None:
    """The seals join up without a gap: then every sealed event lies in exactly one seal's
    range, and deleting below the newest seal deletes only what the ranges checked hold."""
    previous_hash, previous_last = hashing.GENESIS, None
    for expected, seal in enumerate(seals, start=1):
        if (
            seal["number"] != expected
            or seal["previous_hash"] != previous_hash
            or _after(basis, seal) != previous_last
        ):
            report.findings.append(
                verify.Finding(
                    verify.SEAL,
                    f"Siegel {seal['number']}: Siegelkette unterbrochen.",
                    seal["number"],
                )
            )
        previous_hash, previous_last = seal["seal_hash"], _last(basis, seal)


def _touched_seals(
    alias: str,
    basis: str,
    expired: Q,
    seals: list[dict[str, Any]],
    head: ordering.Position,
) -> list[int]:
    """The ids of the seals holding an expired event: one query per touched seal, each
    for the first expired event after the last seal found (an index walk in seal order)."""
    candidates = AuditEvent.objects.using(alias).filter(expired, ordering.up_to(basis, head))
    order = ordering.order_by(basis)
    touched: list[int] = []
    start: ordering.Position | None = None
    index = 0
    while True:
        found = (
            candidates.filter(ordering.after(basis, start))
            .order_by(*order)
            .values_list("txid", "id")
            .first()
        )
        if found is None:
            return touched
        position = _key(ordering.position(basis, found[0], found[1]))
        while _key(_last(basis, seals[index])) < position:
            index += 1
        touched.append(seals[index]["id"])
        start = _last(basis, seals[index])


def _key(position: ordering.Position) -> tuple[int, int]:
    return (position[0] or 0, position[1])


def _plan_seal(
    plan: _Plan,
    report: verify.Report,
    alias: str,
    basis: str,
    expired: Q,
    seal_id: int,
    attested: verify.Attested,
    keys: dict[str, Ed25519PublicKey],
) -> None:
    """Check one touched seal and its events, hash its survivors, add its entry."""
    seal = (
        AuditSeal.objects.using(alias)
        .values(*SEAL_COLUMNS, "manifest", "refused", "signature")
        .get(id=seal_id)
    )
    number = seal["number"]
    verify.check_seal(report, seal, keys)
    after, last = _after(basis, seal), _last(basis, seal)
    survivors = attested.latest.get(number)
    current = verify.check_events(report, alias, basis, seal, after, last, None, survivors)
    _refuse_on_findings(report)
    kept = batches.read(
        AuditEvent.objects.using(alias)
        .filter(ordering.after(basis, after), ordering.up_to(basis, last))
        .exclude(expired),
        basis,
    )
    # Read twice, so the survivors must be exactly the checked events minus the expired
    # ones: a change between the two reads must not slip into the checkpoint.
    checked = dict(current.entries)
    if kept.count >= current.count or any(
        checked.get(event_id) != digest for event_id, digest in kept.entries
    ):
        raise PruningRefused(_changed_meanwhile())
    plan.entries.append(CheckpointEntry(number, kept.count, kept.batch_hash))
    plan.removed += current.count - kept.count


def _remove(
    plan: _Plan,
    alias: str,
    basis: str,
    expired: Q,
    head: ordering.Position,
    previous: tuple[int, str] | None,
    by: trail.Actor,
) -> Removal:
    key = signing.private_key()
    number = 1 if previous is None else previous[0] + 1
    entries = AuditCheckpoint.pack(plan.entries)
    fields: dict[str, Any] = {
        "number": number,
        "created_at": timezone.now(),
        "entries_hash": verify.entries_hash(entries),
        "removed": plan.removed,
        "seals": len(plan.entries),
        "previous_hash": hashing.GENESIS if previous is None else previous[1],
        "key_id": signing.key_id(key.public_key()),
    }
    digest = verify.checkpoint_hash(fields)
    del fields["entries_hash"]  # recomputed from the entries when verifying
    doomed = AuditEvent.objects.using(alias).filter(expired, ordering.up_to(basis, head))
    try:
        with transaction.atomic(using=alias):
            newest = (
                AuditCheckpoint.objects.using(alias)
                .order_by("-number")
                .values_list("number", "checkpoint_hash")
                .first()
            )
            if newest != previous:
                raise PruningRefused(_concurrent())
            checkpoint = AuditCheckpoint.objects.using(alias).create(
                **fields,
                entries=entries,
                checkpoint_hash=digest,
                signature=key.sign(bytes.fromhex(digest)).hex(),
            )
            permit = AuditPrunePermit.objects.using(alias).create(checkpoint=number)
            deleted, _by_model = doomed.delete()
            if deleted != plan.removed:
                # Rolls back the checkpoint too: it would attest what did not happen.
                raise PruningRefused(_changed_meanwhile())
            AuditPrunePermit.objects.using(alias).filter(pk=permit.pk).delete()
            trail.record(
                by,
                AUDIT_EVENTS_REMOVED,
                target=checkpoint,
                details={
                    "removed": plan.removed,
                    "seals": len(plan.entries),
                    "checkpoint": number,
                },
            )
    except IntegrityError as exc:  # another run appended checkpoint NUMBER first
        raise PruningRefused(_concurrent()) from exc
    return Removal(checkpoint, plan.removed, len(plan.entries))


def _refuse_on_findings(report: verify.Report) -> None:
    if not report.findings:
        return
    first, more = report.findings[0].text, len(report.findings) - 1
    if more:
        first += " " + ngettext(
            "(und %(count)d weiterer Befund)", "(und %(count)d weitere Befunde)", more
        ) % {"count": more}
    raise PruningRefused(
        gettext(
            "Löschen verweigert, nichts wurde entfernt: Das Protokoll ist nicht unversehrt. "
            "%(finding)s Bitte mit „manage.py audit_verify“ prüfen und den Befund klären."
        )
        % {"finding": first},
        report.findings,
    )


def _changed_meanwhile() -> str:
    return gettext(
        "Löschen verweigert, nichts wurde entfernt: Das Protokoll hat sich während des Laufs "
        "verändert. Bitte mit „manage.py audit_verify“ prüfen."
    )


def _concurrent() -> str:
    return gettext(
        "Löschen verweigert, nichts wurde entfernt: Gleichzeitig lief eine andere Löschung. "
        "Bitte erneut starten."
    )
