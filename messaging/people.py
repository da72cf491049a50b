"""How a thread names the people in it: "Ben Becker (Jobcenter …)", the person and her
agency, so a reader knows who read her message and with whom a direct conversation is.
One query for any number of people (the thread page's query count stays constant)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.db.models import OuterRef, QuerySet, Subquery

from dienstweg.compiled import IDS, SENTINEL_ID, CompiledQuery
from dienstweg.models import Membership, User
from messaging.models import Participant


def labels_of(user_ids: Iterable[int] | QuerySet[Any]) -> dict[int, str]:
    """Each user's name with her (first) agency, by id; USER_IDS may be a query of ids
    (then it is asked inside this one query)."""
    return {pk: label(name, agency) for pk, name, agency in people_of(user_ids)}


def label_of(user_id: int) -> str | None:
    """The user's name with her (first) agency (None if there is no such user): what the
    readers of a thread see of her read marker."""
    rows = _PERSON.rows(user_id=user_id)
    return label(rows[0][1], rows[0][2]) if rows else None


def people_of(user_ids: Iterable[int] | QuerySet[Any]) -> list[tuple[int, str, str | None]]:
    """(id, name, first agency's name) of each user, by name, in one query."""
    if isinstance(user_ids, QuerySet):
        return list(_people(User.objects.filter(pk__in=user_ids)))
    ids = sorted({pk for pk in user_ids if pk is not None})
    return _PEOPLE.rows(ids=ids) if ids else []


def first_agency(user: str = "pk") -> Subquery:
    """The name of the first agency of the user the outer query's field USER names."""
    return Subquery(
        Membership.objects.filter(user=OuterRef(user))
        .order_by("created_at", "pk")
        .values("agency__name")[:1]
    )


def _people(users: QuerySet[User]) -> QuerySet[Any, tuple[int, str, str | None]]:
    return (
        users.annotate(agency_name=first_agency())
        .order_by("full_name", "pk")
        .values_list("pk", "full_name", "agency_name")
    )


# people_of for one user, and for a list of them (once per length), compiled once
# (dienstweg/compiled.py): building the query cost the thread page more than running it.
_PERSON = CompiledQuery(
    lambda user_id: _people(User.objects.filter(pk=user_id)), user_id=SENTINEL_ID, prepared=True
)
_PEOPLE = CompiledQuery(lambda ids: _people(User.objects.filter(pk__in=ids)), ids=IDS)


def label(name: str, agency: str | None) -> str:
    """ "Ben Becker (Jobcenter …)"; an agency's own bracket (its carrier) is left out, so
    that no name ends in "(… (rebeq GmbH))"."""
    if not agency:
        return name
    return f"{name} ({agency.split(' (', 1)[0]})"


def with_partners(participants: QuerySet[Participant]) -> QuerySet[Participant]:
    """An overview's rows (the user's participant rows), each annotated with the other
    person of a direct thread and her agency (partner_name, partner_agency), inside the
    overview's own query."""
    other = Participant.objects.filter(
        thread_id=OuterRef("thread_id"), thread__kind="direct"
    ).exclude(user_id=OuterRef("user_id"))
    return participants.annotate(
        partner_name=Subquery(other.values("user__full_name")[:1]),
        partner_agency=Subquery(other.annotate(a=first_agency("user_id")).values("a")[:1]),
    )


def direct_partners(thread_ids: Iterable[UUID], *, of: User) -> dict[UUID, str]:
    """For direct threads: the other participant's label, by thread id (one query)."""
    ids = list(thread_ids)
    if not ids:
        return {}
    rows = (
        Participant.objects.filter(thread_id__in=ids)
        .exclude(user=of)
        .annotate(agency_name=first_agency("user_id"))
        .values_list("thread_id", "user__full_name", "agency_name")
    )
    return {thread_id: label(name, agency) for thread_id, name, agency in rows}
