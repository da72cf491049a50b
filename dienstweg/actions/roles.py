"""Operators and case staff are different people, and a case role takes two (BSI
IT-Grundschutz ORP.4: least privilege, four-eyes principle for privileged rights).

- An admin proposes a case or dpo role (propose_membership). The proposal grants nothing:
  no membership, no agency group, until a lead of the agency confirms it; the network's DPO
  role and any role at an agency without a lead of its own (its first lead) are confirmed by
  a second admin. Nobody decides her own proposal or one for herself.
- Admin rights (staff, superuser) are given and taken only by set_admin_rights, never to an
  account that holds or is proposed for a case or dpo role.
- A proposal nobody decides expires after MEMBERSHIP_PROPOSAL_DAYS (expire_proposals)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.trail import record
from dienstweg.access import (
    FOUR_EYES_ROLES,
    deciding_leads,
    has_admin_rights,
    holds_four_eyes_role,
    holds_role,
    is_expired,
    is_raise,
    needs_second_admin,
)
from dienstweg.actions.agencies import (
    check_operator,
    check_separation,
    grant_membership,
    locked_account,
)
from dienstweg.actions.errors import ActionError, NotAllowed
from dienstweg.audit_actions import (
    ACCOUNT_ADMIN_RIGHTS_CHANGED,
    MEMBERSHIP_PROPOSAL_CONFIRMED,
    MEMBERSHIP_PROPOSAL_EXPIRED,
    MEMBERSHIP_PROPOSAL_REFUSED,
    MEMBERSHIP_PROPOSAL_WITHDRAWN,
    MEMBERSHIP_PROPOSED,
)
from dienstweg.models import Agency, Membership, MembershipProposal, User
from dienstweg.notifications import notify

State = MembershipProposal.State
Role = Membership.Role
EXPIRER = "system:proposals"


# Proposing


def check_proposal(
    user: User, *, agency: Agency, role: str, by: User | None, now: datetime | None = None
) -> None:
    """Refuse a proposal that propose_membership would refuse (for the admin's form: it
    writes nothing). An overdue pending proposal for the same place does not stand in the
    way: proposing again lets it expire."""
    check_operator(by)
    if role not in FOUR_EYES_ROLES:
        raise ActionError(
            _(
                "Vorgeschlagen werden Fall- und Datenschutzrollen; die Rolle Administration "
                "vergibt die Administration direkt unter „Mitgliedschaften“."
            )
        )
    if by is not None and by.pk == user.pk:
        raise NotAllowed(_("Niemand schlägt sich selbst für eine Rolle vor."))
    check_separation(user, role)
    if not user.is_active:
        raise ActionError(_("Dieses Konto ist deaktiviert."))
    current = (
        Membership.objects.filter(user=user, agency=agency).values_list("role", flat=True).first()
    )
    if current == role:
        raise ActionError(_("Die Person hat diese Rolle in dieser Einrichtung bereits."))
    if not is_raise(current, role):
        raise ActionError(
            _(
                "Eine niedrigere Rolle gilt sofort und braucht keinen Vorschlag: bitte die "
                "Mitgliedschaft direkt ändern."
            )
        )
    for pending in _pending(user, agency):
        if not is_expired(pending, now=now):
            raise ActionError(
                _(
                    "Für diese Person und Einrichtung liegt schon ein offener Vorschlag vor "
                    "(%(role)s). Er muss erst entschieden oder zurückgezogen werden."
                )
                % {"role": pending.get_role_display()}
            )


def _pending(user: User, agency: Agency) -> list[MembershipProposal]:
    return list(MembershipProposal.objects.filter(user=user, agency=agency, state=State.PENDING))


@transaction.atomic
def propose_membership(
    user: User, *, agency: Agency, role: str, by: User | None, now: datetime | None = None
) -> MembershipProposal:
    """Propose USER for a case or dpo ROLE at AGENCY (a new membership or a higher role).
    Grants nothing yet; the agency's leads (or, for a first lead and the network's DPO, the
    other admins) are notified to decide. Refused for an admin account, for oneself, for a
    role already held or lower than the one held, and while another proposal is open."""
    now = now or timezone.now()
    account = locked_account(user)  # serialises with set_admin_rights and confirmations
    check_proposal(account, agency=agency, role=role, by=by, now=now)
    for overdue in _pending(account, agency):  # check_proposal let only overdue ones pass
        _expire(overdue, now=now)
    try:
        with transaction.atomic():  # two admins at once: the second meets the constraint
            proposal = MembershipProposal.objects.create(
                user=account, agency=agency, role=role, proposed_by=by, proposed_at=now
            )
    except IntegrityError:
        raise ActionError(
            _("Für diese Person und Einrichtung liegt schon ein offener Vorschlag vor.")
        ) from None
    record(
        by,
        MEMBERSHIP_PROPOSED,
        target=proposal,
        agency_id=agency.pk,
        details={"proposal": proposal.pk, "user": account.pk, "role": role},
    )
    _notify_deciders(proposal)
    return proposal


def _notify_deciders(proposal: MembershipProposal) -> None:
    if needs_second_admin(proposal):
        deciders = User.objects.filter(is_active=True, is_superuser=True).exclude(
            pk=proposal.user_id
        )
        title = gettext_lazy("Rolle zur Bestätigung durch eine zweite Administration")
        url = reverse("admin:dienstweg_membershipproposal_changelist")
    else:
        deciders = deciding_leads(proposal)
        title = gettext_lazy("Rolle zur Bestätigung")
        url = reverse("home")
    if proposal.proposed_by_id is not None:  # the proposer is no second person
        deciders = deciders.exclude(pk=proposal.proposed_by_id)
    notify(deciders, kind="membership.proposed", title=title, url=url)


# Deciding


def _locked_undecided(proposal: MembershipProposal) -> MembershipProposal:
    locked = MembershipProposal.objects.select_for_update().get(pk=proposal.pk)
    if locked.state != State.PENDING:
        raise ActionError(
            _("Über diesen Vorschlag ist schon entschieden (%(state)s).")
            % {"state": locked.get_state_display()}
        )
    return locked


def _locked_pending(proposal: MembershipProposal, *, now: datetime) -> MembershipProposal:
    locked = _locked_undecided(proposal)
    if is_expired(locked, now=now):
        raise ActionError(
            _("Dieser Vorschlag ist nach %(days)d Tagen abgelaufen; bitte neu vorschlagen.")
            % {"days": settings.MEMBERSHIP_PROPOSAL_DAYS}
        )
    return locked


def check_decider(proposal: MembershipProposal, *, by: User) -> None:
    """Refuse BY as the second person for PROPOSAL: the person proposed, the proposer, and
    anyone but a lead of the agency (or, where a second admin decides, anyone but an admin)."""
    if by.pk == proposal.user_id:
        raise NotAllowed(_("Über einen Vorschlag für sich selbst entscheidet eine andere Person."))
    if by.pk == proposal.proposed_by_id:
        raise NotAllowed(_("Den eigenen Vorschlag bestätigt eine zweite Person."))
    if not by.is_active:
        raise NotAllowed(_("Dieses Konto ist deaktiviert."))
    if needs_second_admin(proposal):
        if not has_admin_rights(by):
            if proposal.role == Role.NETWORK_DPO:
                raise NotAllowed(
                    _(
                        "Die Rolle „Datenschutzbeauftragte/r des Verbunds“ bestätigt eine "
                        "zweite Administratorin oder ein zweiter Administrator."
                    )
                )
            raise NotAllowed(
                _(
                    "Diese Einrichtung hat noch keine Leitung: den Vorschlag bestätigt eine "
                    "zweite Administratorin oder ein zweiter Administrator."
                )
            )
    elif not holds_role(by, Role.LEAD, agency=proposal.agency_id):
        raise NotAllowed(_("Diesen Vorschlag bestätigt die Leitung der Einrichtung."))


@transaction.atomic
def confirm_proposal(
    proposal: MembershipProposal, *, by: User, now: datetime | None = None
) -> Membership:
    """Confirm the proposal as the second person: the membership takes effect now (its
    group, its access), and the person is notified."""
    now = now or timezone.now()
    account = locked_account(proposal.user)
    locked = _locked_pending(proposal, now=now)
    check_decider(locked, by=by)
    check_separation(account, locked.role)  # admin rights given since the proposal
    if not account.is_active:
        raise ActionError(_("Das vorgeschlagene Konto ist deaktiviert."))
    second_admin = needs_second_admin(locked)
    locked.state, locked.decided_by, locked.decided_at = State.CONFIRMED, by, now
    locked.save(update_fields=["state", "decided_by", "decided_at"])
    membership = grant_membership(
        account, agency=locked.agency, role=locked.role, by=by, proposal=locked
    )
    record(
        by,
        MEMBERSHIP_PROPOSAL_CONFIRMED,
        target=locked,
        agency_id=locked.agency_id,
        details={
            "proposal": locked.pk,
            "user": account.pk,
            "role": locked.role,
            "proposed_by": locked.proposed_by_id,
            "second_admin": second_admin,
        },
    )
    notify([account], kind="membership.confirmed", title=gettext_lazy("Neue Rolle"), url="/")
    _copy_decision(proposal, locked)
    return membership


@transaction.atomic
def refuse_proposal(
    proposal: MembershipProposal, *, by: User, now: datetime | None = None
) -> MembershipProposal:
    """Refuse the proposal as the one who would confirm it: nothing is granted."""
    now = now or timezone.now()
    locked = _locked_pending(proposal, now=now)
    check_decider(locked, by=by)
    _close(locked, State.REFUSED, by=by, now=now, action=MEMBERSHIP_PROPOSAL_REFUSED)
    _copy_decision(proposal, locked)
    return locked


@transaction.atomic
def withdraw_proposal(
    proposal: MembershipProposal, *, by: User | None, now: datetime | None = None
) -> MembershipProposal:
    """Withdraw a pending proposal (any admin: withdrawing grants nothing)."""
    check_operator(by)
    now = now or timezone.now()
    locked = _locked_undecided(proposal)
    _close(locked, State.WITHDRAWN, by=by, now=now, action=MEMBERSHIP_PROPOSAL_WITHDRAWN)
    _copy_decision(proposal, locked)
    return locked


def _close(
    locked: MembershipProposal,
    state: str,
    *,
    by: User | None,
    now: datetime,
    action: str,
    actor: User | str | None = None,
) -> None:
    """End a locked pending proposal without granting anything, and record it (by BY, or
    by ACTOR where no person decided)."""
    locked.state, locked.decided_by, locked.decided_at = state, by, now
    locked.save(update_fields=["state", "decided_by", "decided_at"])
    record(
        actor if actor is not None else by,
        action,
        target=locked,
        agency_id=locked.agency_id,
        details={"proposal": locked.pk, "user": locked.user_id, "role": locked.role},
    )


def _expire(proposal: MembershipProposal, *, now: datetime) -> None:
    _close(
        proposal, State.EXPIRED, by=None, now=now, action=MEMBERSHIP_PROPOSAL_EXPIRED, actor=EXPIRER
    )


def expire_proposals(*, now: datetime | None = None) -> int:
    """Mark every pending proposal older than MEMBERSHIP_PROPOSAL_DAYS expired, each in its
    own transaction with its record; returns how many (manage.py expire_proposals)."""
    now = now or timezone.now()
    expired = 0
    candidates = MembershipProposal.objects.filter(state=State.PENDING).order_by("pk")
    for proposal in candidates.iterator():
        if not is_expired(proposal, now=now):
            continue
        with transaction.atomic():
            locked = MembershipProposal.objects.select_for_update().get(pk=proposal.pk)
            if locked.state == State.PENDING:
                _expire(locked, now=now)
                expired += 1
    return expired


def _copy_decision(proposal: MembershipProposal, locked: MembershipProposal) -> None:
    proposal.state, proposal.decided_by, proposal.decided_at = (
        locked.state,
        locked.decided_by,
        locked.decided_at,
    )


# Admin rights


def check_admin_rights(user: User, *, staff: bool, superuser: bool, by: User | None) -> None:
    """Refuse what set_admin_rights would refuse (for the admin's form: it writes nothing)."""
    if by is not None and not (by.is_active and by.is_superuser):
        raise NotAllowed(
            _(
                "Verwaltungsrechte vergeben und entziehen nur Administratorinnen und "
                "Administratoren mit allen Rechten."
            )
        )
    if by is not None and by.pk == user.pk:
        raise NotAllowed(_("Die eigenen Verwaltungsrechte ändert eine zweite Person."))
    granting = (staff and not user.is_staff) or (superuser and not user.is_superuser)
    if granting and holds_four_eyes_role(user):
        raise NotAllowed(
            _(
                "Dieses Konto hat eine Fall- oder Datenschutzrolle (oder ist dafür "
                "vorgeschlagen) und erhält deshalb keine Verwaltungsrechte: Betrieb und "
                "Fallarbeit bleiben getrennt. Für den Betrieb braucht die Person ein eigenes "
                "Konto."
            )
        )


@transaction.atomic
def set_admin_rights(user: User, *, staff: bool, superuser: bool, by: User | None) -> User:
    """Give or take the account's admin rights: staff (opens the admin) and superuser.
    Only a superuser does it, never for herself, and never gives them to an account that
    holds or is proposed for a case or dpo role."""
    account = locked_account(user)
    check_admin_rights(account, staff=staff, superuser=superuser, by=by)
    if (account.is_staff, account.is_superuser) != (staff, superuser):
        account.is_staff, account.is_superuser = staff, superuser
        account.save(update_fields=["is_staff", "is_superuser"])
        record(
            by,
            ACCOUNT_ADMIN_RIGHTS_CHANGED,
            target=account,
            details={"user": account.pk, "staff": staff, "superuser": superuser},
        )
    user.is_staff, user.is_superuser = account.is_staff, account.is_superuser
    return account
