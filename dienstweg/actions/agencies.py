"""Agencies and memberships: who belongs where, with which role."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.translation import gettext as _

from audit.trail import record
from dienstweg.actions.errors import ActionError
from dienstweg.audit_actions import MEMBERSHIP_GRANTED, MEMBERSHIP_REMOVED
from dienstweg.models import Agency, Membership, User

# Agencies and memberships


@transaction.atomic
def create_agency(*, name: str, kind: str, rechtskreis: str, **fields: Any) -> Agency:
    """Create an agency with the auth group its members are put into."""
    agency = Agency(name=name, kind=kind, rechtskreis=rechtskreis, **fields)
    attach_agency_group(agency)
    agency.save()
    return agency


def attach_agency_group(agency: Agency) -> None:
    """Give a new agency its own auth group (permissions are granted to groups later)."""
    if agency.group_id is None:
        agency.group = Group.objects.create(name=f"agency:{secrets.token_hex(8)}")


@transaction.atomic
def add_membership(user: User, *, agency: Agency, role: str, by: User | None) -> Membership:
    """Put a user into an agency with a role (and into the agency's group)."""
    if role not in Membership.Role.values:
        raise ActionError(_("Unbekannte Rolle."))
    membership, created = Membership.objects.get_or_create(
        user=user, agency=agency, defaults={"role": role}
    )
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    user.groups.add(agency.group)
    record(
        by,
        MEMBERSHIP_GRANTED,
        target=membership,
        agency_id=agency.pk,
        details={"user": user.pk, "role": role},
    )
    return membership


@transaction.atomic
def remove_membership(membership: Membership, *, by: User | None) -> None:
    """Take a user out of an agency (and out of its group)."""
    membership.user.groups.remove(membership.agency.group)
    record(
        by,
        MEMBERSHIP_REMOVED,
        target=membership,
        agency_id=membership.agency_id,
        details={"user": membership.user_id, "role": membership.role},
    )
    membership.delete()  # its sockets are told by dienstweg.rights
