"""What the core's actions raise, and the actor checks several of them share."""

from __future__ import annotations

from django.utils.translation import gettext as _

from dienstweg.access import dpo_scope_of, record_refusal
from dienstweg.audit_actions import FAMILY_ACCESS_DENIED
from dienstweg.models import Family, User


class ActionError(Exception):
    """A rule of the domain refused the action; the message is for the user."""


class NotAllowed(ActionError):
    """The actor may not take this action (her role); nothing was written."""


def case_write_refused(by: User, family: Family) -> NotAllowed:
    """Audit a refused write to the family's record as a refused access to it (as
    access_family_by_id does), in its own transaction, and return the error to raise."""
    record_refusal(by, FAMILY_ACCESS_DENIED, family)
    return NotAllowed(_("Das dürfen nur Coaches, Fallbearbeitung und Leitungen des Projekts."))


def check_dpo(
    by: User | str | None, *, agency_id: int | None = None, family: Family | None = None
) -> None:
    """Refuse a person who is not data-protection officer (of AGENCY_ID, if given), and one
    whose scope does not cover FAMILY (its owner's DPO or the network's; that refusal is
    audited as a refused access to the family). A name or None stands for the platform
    itself (a management command), which may act. One query."""
    if not isinstance(by, User):
        return
    scope = dpo_scope_of(by)
    if scope is None or (agency_id is not None and agency_id not in scope.agency_ids):
        raise NotAllowed(_("Das dürfen nur Datenschutzbeauftragte."))
    if family is not None and not scope.covers_family(family):
        record_refusal(by, FAMILY_ACCESS_DENIED, family)
        raise NotAllowed(
            _("Das dürfen nur die Datenschutzbeauftragten der Stelle, die die Familie betreut.")
        )
