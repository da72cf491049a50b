"""Which events of a batch the sealer refuses as dated out of order, and the newest time
it has sealed so far (the high-water mark each seal carries, signed).

An event is refused when its time lies more than the tolerance
(settings.AUDIT_CLOCK_SKEW_SECONDS) before the newest time of an event sealed before it, in
the sealing order (audit/ordering.py), or more than the tolerance after the sealer's own
clock. Such an event cannot have been recorded by record() in the ordinary way: someone
wrote it into the table with a time of their choosing (or a clock jumped). The tolerance
covers the order in which transactions commit (an event recorded early in a transaction
that commits later is sealed after younger ones) and clocks of several hosts.

A refused event stays in its seal's batch (so changing or deleting it later is named like
any other change) and is listed in the seal's signed `refused` entries; audit_verify
names it every time, and it never counts as genuine. The decision does not depend on
where batches begin and end: the mark runs on through the seals.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Case, DateTimeField, F, Max, QuerySet, Value, When, Window
from django.db.models.expressions import RowRange
from django.db.models.functions import Coalesce, Greatest

from audit import ordering
from audit.models import AuditEvent

BACKDATED = 1  # before the newest time sealed so far, less the tolerance
FUTURE = 2  # after the sealer's clock, plus the tolerance

# Per refused event: its id, the reason, its time and the bound it broke (microseconds
# since 1970 UTC): 25 bytes.
_ENTRY = struct.Struct(">qBqq")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Refusal:
    event_id: int
    reason: int
    occurred_at: datetime
    bound: datetime


@dataclass(frozen=True)
class Judgement:
    refused: list[Refusal]
    high_water: datetime | None  # the newest time sealed, this batch's accepted ones included


def tolerance() -> timedelta:
    return timedelta(seconds=settings.AUDIT_CLOCK_SKEW_SECONDS)


def judge(
    events: QuerySet[AuditEvent],
    basis: str,
    *,
    high_water: datetime | None,
    now: datetime,
    skew: timedelta | None = None,
) -> Judgement:
    """EVENTS: exactly one batch's range. HIGH_WATER: the previous seal's mark (None before
    the first seal). Three queries, none of them per event."""
    skew = tolerance() if skew is None else skew
    latest = now + skew
    future = [
        Refusal(event_id, FUTURE, occurred_at, latest)
        for event_id, occurred_at in events.filter(occurred_at__gt=latest)
        .order_by(*ordering.order_by(basis))
        .values_list("id", "occurred_at")
    ]
    # Per event, the newest time before it in sealing order (future-dated ones left out:
    # they would hold every later event back); only events older than that are candidates,
    # and the tolerance is applied below. Out-of-order by a few milliseconds is common, so
    # the candidates are a small share of the batch, never every event.
    accepted_time = Case(When(occurred_at__lte=latest, then=F("occurred_at")))
    before = Window(
        Max(accepted_time),
        order_by=[F(name).asc() for name in ordering.order_by(basis)],
        frame=RowRange(start=None, end=-1),
    )
    mark: Coalesce | Window | Greatest = before
    if high_water is not None:
        floor = Value(high_water, output_field=DateTimeField())
        mark = Greatest(Coalesce(before, floor), floor)
    candidates = (
        events.annotate(mark=mark)
        .filter(occurred_at__lt=F("mark"))
        .order_by(*ordering.order_by(basis))
        .values_list("id", "occurred_at", "mark")
    )
    backdated = [
        Refusal(event_id, BACKDATED, occurred_at, bound)
        for event_id, occurred_at, bound in candidates
        if occurred_at < bound - skew and occurred_at <= latest
    ]
    # Max over the expression, not a filtered column: for MAX(occurred_at) PostgreSQL walks
    # the time index backwards from the newest event in the table until it meets the batch
    # (200 ms and more per seal at a million events); this reads the batch's range only.
    newest = events.aggregate(newest=Max(accepted_time))["newest"]
    marks = [moment for moment in (high_water, newest) if moment is not None]
    refused = sorted(future + backdated, key=lambda refusal: refusal.event_id)
    return Judgement(refused, max(marks, default=None))


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def pack(refused: Iterable[Refusal]) -> bytes:
    return b"".join(
        _ENTRY.pack(r.event_id, r.reason, _micros(r.occurred_at), _micros(r.bound)) for r in refused
    )


def unpack(refused: bytes | None) -> list[Refusal]:
    """The refusals a seal lists; ValueError if they are not whole entries."""
    raw = refused or b""
    if len(raw) % _ENTRY.size:
        raise ValueError("refused entries are not whole records")
    return [
        Refusal(event_id, reason, _moment(occurred), _moment(bound))
        for event_id, reason, occurred, bound in _ENTRY.iter_unpack(raw)
    ]
