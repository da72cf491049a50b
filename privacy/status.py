"""The trail's verification status for the console: the last seal, the unsealed tail,
the result of the last `audit_verify` (recorded as an `audit.verified` event) and the
events the sealer refused as dated out of order (each recorded as `audit.event_refused`;
audit_verify names them from the seals themselves)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import connections, router

from audit import ordering
from audit.audit_actions import AUDIT_EVENT_REFUSED, AUDIT_VERIFIED
from audit.models import AuditEvent, AuditSeal

# The tail is counted up to here: the sealer keeps it short, and a count of millions
# (the sealer stopped for days) would cost the overview half a second (bench/step5.py).
UNSEALED_COUNT_LIMIT = 10_000
REFUSED_SHOWN = 5  # the newest refusals named on the overview; the search finds them all


@dataclass(frozen=True)
class TrailStatus:
    last_seal: dict[str, Any] | None
    unsealed: int  # at most UNSEALED_COUNT_LIMIT + 1
    last_verify: AuditEvent | None
    refused: list[AuditEvent] = field(default_factory=list)  # newest first, REFUSED_SHOWN

    @property
    def unsealed_over_limit(self) -> bool:
        return self.unsealed > UNSEALED_COUNT_LIMIT

    @property
    def last_verify_ok(self) -> bool | None:
        if self.last_verify is None:
            return None
        return bool(self.last_verify.details.get("ok"))


def trail_status() -> TrailStatus:
    alias = router.db_for_read(AuditEvent)
    basis = ordering.basis(connections[alias])
    last_seal = (
        AuditSeal.objects.using(alias)
        .order_by("-number")
        .values("number", "sealed_at", "event_count", "last_txid", "last_event_id")
        .first()
    )
    after = (
        None
        if last_seal is None
        else ordering.position(basis, last_seal["last_txid"], last_seal["last_event_id"])
    )
    # The tail after the last seal: a short walk of the sealer's (txid, id) index.
    tail = AuditEvent.objects.using(alias).filter(ordering.after(basis, after))
    unsealed = tail.values("id")[: UNSEALED_COUNT_LIMIT + 1].count()
    last_verify = (
        AuditEvent.objects.using(alias)
        .filter(action=AUDIT_VERIFIED)
        .order_by("-occurred_at", "-id")
        .first()
    )
    # On the (action, occurred_at, id) index: one short range scan.
    refused = list(
        AuditEvent.objects.using(alias)
        .filter(action=AUDIT_EVENT_REFUSED)
        .order_by("-occurred_at", "-id")[:REFUSED_SHOWN]
    )
    return TrailStatus(
        None if last_seal is None else dict(last_seal), unsealed, last_verify, refused
    )
