"""The family's change history, read from the audit trail: who registered and changed the
record, when, and which fields (the trail holds their names, never their values)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, ngettext_lazy

from audit.models import AuditEvent
from dienstweg.audit_actions import FAMILY_CHANGED, FAMILY_REGISTERED
from dienstweg.models import Agency, Family, User

# The names change_family records (dienstweg.actions.families), in the order shown.
FIELD_LABELS = {
    "address": _("Anschrift"),
    "phone": _("Telefon"),
    "notes": _("Notizen"),
    "member_kind": _("Art einer Person"),
    "member_first_name": _("Vorname"),
    "member_last_name": _("Nachname"),
    "member_birth_date": _("Geburtsdatum"),
}

COUNT_LABELS = {
    "members_added": ngettext_lazy("%(n)d Person hinzugefügt", "%(n)d Personen hinzugefügt", "n"),
    "members_removed": ngettext_lazy("%(n)d Person entfernt", "%(n)d Personen entfernt", "n"),
    "members_changed": ngettext_lazy("%(n)d Person geändert", "%(n)d Personen geändert", "n"),
}


@dataclass(frozen=True)
class Change:
    at: datetime
    who: str
    agency: str
    what: list[str]


def history_of(family: Family) -> QuerySet[AuditEvent]:
    """The family's registration and changes, newest first (the trail's family index)."""
    return AuditEvent.objects.filter(
        family_id=str(family.pk), action__in=[FAMILY_REGISTERED, FAMILY_CHANGED]
    ).order_by("-occurred_at", "-id")


def describe(events: list[AuditEvent]) -> list[Change]:
    """The events as lines of the history, with the people and agencies named: two
    queries however many events."""
    users = User.objects.in_bulk({e.actor_id for e in events if e.actor_id is not None})
    agencies = Agency.objects.in_bulk({e.agency_id for e in events if e.agency_id is not None})
    changes = []
    for event in events:
        user = users.get(event.actor_id) if event.actor_id is not None else None
        agency = agencies.get(event.agency_id) if event.agency_id is not None else None
        if event.action == FAMILY_REGISTERED:
            n = event.details.get("members", 0)
            what = [
                ngettext("Familie angelegt (%(n)d Person)", "Familie angelegt (%(n)d Personen)", n)
                % {"n": n}
            ]
        else:
            what = [str(label) for key, label in FIELD_LABELS.items() if event.details.get(key)]
            what += [
                label % {"n": event.details[key]}
                for key, label in COUNT_LABELS.items()
                if event.details.get(key)
            ]
        changes.append(
            Change(
                at=event.occurred_at,
                who=user.full_name if user is not None else str(_("unbekannt")),
                agency=agency.name if agency is not None else "",
                what=what,
            )
        )
    return changes
