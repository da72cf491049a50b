"""What the core's actions raise, and the actor checks several of them share."""

from __future__ import annotations

from django.utils.translation import gettext as _

from dienstweg.access import is_dpo, record_refusal
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


def check_dpo(by: User | str | None, *, agency_id: int | None = None) -> None:
    """Refuse a person who is not data-protection officer (of AGENCY_ID, if given). A name
    or None stands for the platform itself (a management command), which may act."""
    if isinstance(by, User) and not is_dpo(by, agency=agency_id):
        raise NotAllowed(_("Das dürfen nur Datenschutzbeauftragte."))
