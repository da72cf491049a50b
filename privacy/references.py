"""What an event's target is, in words a DPO reads: "Vermittlung an Jobcenter …",
"Antrag 7KQM-3XPA-94TD", a person's name (a family is named by its reference beside it);
a UUID's first characters only where the object has no reference of its own (or is gone).
A fixed number of queries per page."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from applications.models import ApplicationTag
from dienstweg.models import Agency, User
from referrals.models import Referral

# The trail's target types (audit.trail._target), named for people.
TARGET_TYPES: dict[str, Promise] = {
    "referrals.referral": gettext_lazy("Vermittlung"),
    "referrals.applicationtag": gettext_lazy("Antrag"),
    "referrals.attachment": gettext_lazy("Anhang einer Vermittlung"),
    "dienstweg.family": gettext_lazy("Familie"),
    "dienstweg.consent": gettext_lazy("Einwilligung"),
    "dienstweg.user": gettext_lazy("Konto"),
    "dienstweg.agency": gettext_lazy("Einrichtung"),
    "dienstweg.membership": gettext_lazy("Mitgliedschaft"),
    "dienstweg.membershipproposal": gettext_lazy("Rollenvorschlag"),
    "messaging.thread": gettext_lazy("Unterhaltung"),
    "messaging.message": gettext_lazy("Nachricht"),
    "messaging.attachment": gettext_lazy("Anhang einer Nachricht"),
}


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _uuids(values: Iterable[str]) -> set[uuid.UUID]:
    return {key for key in map(_uuid, values) if key is not None}


def _ints(values: Iterable[str]) -> set[int]:
    return {int(value) for value in values if value.isdigit()}


def target_references(events: list[Any]) -> dict[int, tuple[str, str]]:
    """Each event's target (by event id) as words and a code to keep whole on one line
    ("Antrag", "7KQM-3XPA-94TD"); events without a target are left out. Four queries at
    most, however many events."""
    by_type: dict[str, set[str]] = {}
    for event in events:
        if event.target_type:
            by_type.setdefault(event.target_type, set()).add(event.target_id)

    def ids(kind: str) -> set[str]:
        return by_type.get(kind, set())

    referrals = dict(
        Referral.objects.filter(pk__in=_uuids(ids("referrals.referral")))
        .order_by()
        .values_list("pk", "to_agency__name")
    )
    codes = dict(
        ApplicationTag.objects.filter(pk__in=_uuids(ids("referrals.applicationtag")))
        .order_by()
        .values_list("pk", "code")
    )
    people = dict(
        User.objects.filter(pk__in=_ints(ids("dienstweg.user")))
        .order_by()
        .values_list("pk", "full_name")
    )
    agencies = dict(
        Agency.objects.filter(pk__in=_ints(ids("dienstweg.agency")))
        .order_by()
        .values_list("pk", "name")
    )
    words: dict[int, tuple[str, str]] = {}
    for event in events:
        kind, target = event.target_type, event.target_id
        if not kind:
            continue
        key = _uuid(target)
        label = str(TARGET_TYPES.get(kind, kind))
        named: tuple[str, str] | None = None
        if kind == "dienstweg.family" and event.family_ref:
            continue  # the family's reference is shown (and linked) beside it anyway
        if kind == "referrals.referral" and key in referrals:
            named = (_("Vermittlung an %(agency)s") % {"agency": referrals[key]}, "")
        elif kind == "referrals.applicationtag" and key in codes:
            named = (label, codes[key])
        elif kind == "dienstweg.user" and target.isdigit() and int(target) in people:
            named = (people[int(target)], "")
        elif kind == "dienstweg.agency" and target.isdigit() and int(target) in agencies:
            named = (agencies[int(target)], "")
        if named:
            words[event.id] = named
        elif key is not None:
            # No reference of its own (or gone): the kind and the id's first characters.
            words[event.id] = (label, f"{target[:8]}…")
        else:
            words[event.id] = (label, target)
    return words
