"""Which events the sealer may seal, and in which order: the one place that knows.

Ids come from a sequence and commit out of order: a transaction that took id 41 can still
be open when the one with id 42 commits. Had the sealer sealed 42, the later commit of 41
would land inside sealed history and look like an inserted event. So:

- PostgreSQL: every event records its writing transaction's id (txid, a column default).
  Every transaction with a txid below the snapshot's xmin has ended, and no running or
  future transaction can get one, so the events below that fence are final. The sealer
  orders by (txid, id) and seals only below the fence.
- SQLite: one writer at a time and AUTOINCREMENT ids (never reused, never behind a
  committed one), so ids commit in order; the fence is the highest committed id + 1.

A seal covers every event after the previous seal's last position up to its own last
position; together the seals partition sealed history, so nothing can be slipped in.
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

TXID = "txid"  # PostgreSQL: order and fence by the writing transaction's id
ID = "id"  # SQLite: order and fence by the event id

# A place in the sealing order: (txid, id) on PostgreSQL, (None, id) on SQLite.
Position = tuple[int | None, int]


def basis(connection: BaseDatabaseWrapper) -> str:
    if connection.vendor == "postgresql":
        return TXID
    if connection.vendor == "sqlite":
        return ID
    raise NotImplementedError(f"the audit sealer knows no safe order on {connection.vendor}")


def order_by(basis: str) -> tuple[str, ...]:
    return ("txid", "id") if basis == TXID else ("id",)


def fence(connection: BaseDatabaseWrapper, basis: str) -> int:
    """Every event below this bound is committed and no event can still join it."""
    with connection.cursor() as cursor:
        if basis == TXID:
            cursor.execute("SELECT txid_snapshot_xmin(txid_current_snapshot())")
        else:
            cursor.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM audit_auditevent")
        row = cursor.fetchone()
    return int(row[0])


def below(basis: str, bound: int) -> Q:
    return Q(txid__lt=bound) if basis == TXID else Q(id__lt=bound)


def after(basis: str, position: Position | None) -> Q | RawSQL:
    """Events strictly after POSITION (all events when it is None)."""
    if position is None:
        # On PostgreSQL an event without txid was not written by record(): never sealed.
        return Q(txid__isnull=False) if basis == TXID else Q()
    if basis == TXID:
        return _compare(">", position)
    return Q(id__gt=position[1])


def up_to(basis: str, position: Position) -> Q | RawSQL:
    """Events at or before POSITION."""
    if basis == TXID:
        return _compare("<=", position)
    return Q(id__lte=position[1])


def _compare(operator: str, position: Position) -> RawSQL:
    # A row comparison, which PostgreSQL answers with one ordered range scan of the
    # (txid, id) index; ORM lookups would spell it as an OR that it cannot. The plain
    # bound on txid it implies is for the planner, which cannot estimate a row comparison
    # (it guessed a quarter of the table for a batch and scanned all of it).
    bound = ">=" if operator == ">" else "<="
    return RawSQL(  # noqa: S611 (constant SQL, bound parameters)
        f'(("audit_auditevent"."txid", "audit_auditevent"."id") {operator} (%s, %s) '
        f'AND "audit_auditevent"."txid" {bound} %s)',
        (*position, position[0]),
        output_field=BooleanField(),
    )


def position(basis: str, txid: int | None, event_id: int) -> Position:
    return (txid, event_id) if basis == TXID else (None, event_id)
