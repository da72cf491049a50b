"""The one lock order of the platform (README, "Lock order"): a transaction that locks
several rows about one family locks them in this order, and never the other way round:

    family  →  referral or application tag  →  thread  →  message

Every step on a referral or a tag therefore locks its family row first (lock_family_row),
also when it would not need it for itself: two transactions about the same family then
meet at the family row, and one waits for the other instead of both dying in a deadlock
(the erasure, a restriction and each transmission lock the family row anyway). The
family's consent rows are locked only while its family row is held."""

from __future__ import annotations

from uuid import UUID

from django.db import connection

from dienstweg.models import Family


def lock_family_row(family_id: UUID | str) -> None:
    """Lock the family row (the first lock of every path about the family), waiting for
    whoever holds it. Must run inside the transaction whose later locks it orders."""
    if not connection.in_atomic_block:
        raise RuntimeError("lock_family_row() must run inside a transaction")
    # By the primary key alone, and read: Django evaluates a queryset only when asked.
    list(Family.objects.select_for_update(of=("self",)).filter(pk=family_id).values_list("pk"))
