"""Agencies and memberships: who belongs where, with which role.

A case or dpo role is granted only through a confirmed proposal (dienstweg/actions/roles.py)
and never to an account with admin rights; add_membership gives such a role directly only
when the platform itself acts (by=None: the demo, a command), and even then never to an
operator's account."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.translation import gettext as _

from audit.trail import record
from dienstweg.access import FOUR_EYES_ROLES, LOWER_ROLES, has_admin_rights, is_raise
from dienstweg.actions.errors import ActionError, NotAllowed
from dienstweg.audit_actions import MEMBERSHIP_GRANTED, MEMBERSHIP_REMOVED
from dienstweg.models import Agency, Membership, MembershipProposal, User

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


def check_operator(by: User | None) -> None:
    """Refuse a person who is no active admin. None stands for the platform itself (the
    demo loader, a management command), which may act."""
    if by is not None and not (by.is_active and has_admin_rights(by)):
        raise NotAllowed(_("Das dürfen nur Administratorinnen und Administratoren."))


def check_separation(user: User, role: str) -> None:
    """Refuse a case or dpo role for an account with admin rights (separation of duties)."""
    if role in FOUR_EYES_ROLES and has_admin_rights(user):
        raise NotAllowed(
            _(
                "Ein Konto mit Verwaltungsrechten erhält keine Fall- oder Datenschutzrolle: "
                "Betrieb und Fallarbeit bleiben getrennt. Für diese Rolle braucht die Person "
                "ein eigenes Konto ohne Verwaltungsrechte."
            )
        )


def locked_account(user: User) -> User:
    """The account's row, locked until the transaction ends: granting a role and granting
    admin rights lock it first, so the two can never both pass their checks at once."""
    return User.objects.select_for_update().get(pk=user.pk)


def check_membership(user: User, *, agency: Agency, role: str, by: User | None) -> None:
    """Refuse what add_membership would refuse (for the admin's form: it writes nothing)."""
    if role not in Membership.Role.values:
        raise ActionError(_("Unbekannte Rolle."))
    check_operator(by)
    if by is not None and by.pk == user.pk:
        raise NotAllowed(_("Niemand vergibt sich selbst eine Rolle."))
    check_separation(user, role)
    current = (
        Membership.objects.filter(user=user, agency=agency).values_list("role", flat=True).first()
    )
    if by is not None and is_raise(current, role):
        raise NotAllowed(
            _(
                "Eine Fall- oder Datenschutzrolle wird vorgeschlagen (Verwaltung: "
                "„Rollenvorschläge“) und gilt erst, wenn eine zweite Person sie bestätigt "
                "(Vier-Augen-Prinzip)."
            )
        )


@transaction.atomic
def add_membership(user: User, *, agency: Agency, role: str, by: User | None) -> Membership:
    """Put a user into an agency with a role (and into the agency's group), or change her
    role there. A person (an admin) may do so only for a role that needs no second person:
    the admin role, or a lower role than the one held (lead to coach or caseworker). A case
    or dpo role is proposed instead (roles.propose_membership); only the platform itself
    (by=None) gives one directly, and never to an account with admin rights."""
    account = locked_account(user)  # serialises with set_admin_rights
    check_membership(account, agency=agency, role=role, by=by)
    return grant_membership(account, agency=agency, role=role, by=by, proposal=None)


def grant_membership(
    user: User,
    *,
    agency: Agency,
    role: str,
    by: User | None,
    proposal: MembershipProposal | None,
) -> Membership:
    """Write the membership and its group, and record it. Only for add_membership and
    roles.confirm_proposal, which have checked the actor and the rules."""
    membership, created = Membership.objects.get_or_create(
        user=user, agency=agency, defaults={"role": role, "granted_through": proposal}
    )
    if not created and (membership.role != role or proposal is not None):
        # A lowering keeps the confirmation behind the higher role; anything else names
        # the proposal it came through, or none (the platform granted it directly).
        if proposal is not None or role not in LOWER_ROLES.get(membership.role, frozenset()):
            membership.granted_through = proposal
        membership.role = role
        membership.save(update_fields=["role", "granted_through"])
    user.groups.add(agency.group)
    record(
        by,
        MEMBERSHIP_GRANTED,
        target=membership,
        agency_id=agency.pk,
        details={"user": user.pk, "role": role, "proposal": proposal.pk if proposal else None},
    )
    return membership


@transaction.atomic
def remove_membership(membership: Membership, *, by: User | None) -> None:
    """Take a user out of an agency (and out of its group). Takes effect at once: removing
    a right needs no second person."""
    check_operator(by)
    membership.user.groups.remove(membership.agency.group)
    record(
        by,
        MEMBERSHIP_REMOVED,
        target=membership,
        agency_id=membership.agency_id,
        details={"user": membership.user_id, "role": membership.role},
    )
    membership.delete()  # its sockets are told by dienstweg.rights
