"""The object permissions of referrals (django-guardian), granted and withdrawn only here:
the sending project's group and, on delivery, the receiving agency's group may view a
referral, its assignee may change it; withdrawal, consent revocation and expiry take the
receiving side's permissions away, and a restriction of the family's processing hides it."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from guardian.shortcuts import assign_perm, remove_perm

from audit.trail import record
from dienstweg import events
from dienstweg.hooks import Loss
from dienstweg.models import Consent, Family, Membership, User
from referrals.actions.notices import notify_of, receiving_leads
from referrals.actions.transitions import lock_referral
from referrals.audit_actions import REFERRAL_ACCESS_WITHDRAWN
from referrals.models import Referral, ReferralEvent


def grant_view(referral: Referral, group: Group) -> None:
    """Let the case roles of an agency (its group) open the referral."""
    assign_perm("view_referral", group, referral)


def hand_over_change(referral: Referral, *, previous: User | None, assignee: User) -> None:
    """Let the assignee (alone) take the receiving agency's steps."""
    if previous is not None and previous != assignee:
        remove_perm("change_referral", previous, referral)
    assign_perm("change_referral", assignee, referral)


def revoke_receiver_permissions(referral: Referral) -> None:
    """Take the receiving side's permissions away (its group's and its assignee's)."""
    remove_perm("view_referral", referral.to_agency.group, referral)
    if referral.assignee is not None:
        remove_perm("change_referral", referral.assignee, referral)
    # Open sockets of the receiving agency re-check what they follow (its thread).
    receivers = Membership.objects.filter(agency_id=referral.to_agency_id)
    events.access_revoked([*receivers.values_list("user_id", flat=True), referral.assignee_id])


# The end of the receiving agency's access


def end_receiver_access(referral: Referral, *, reason: str, by: User | None) -> None:
    """Withdraw the receiving agency's access (consent revoked or expired)."""
    with transaction.atomic():
        locked = lock_referral(referral)
        if locked is None or locked.access_ended_at is not None:
            return
        locked.access_ended_at = timezone.now()
        locked.save(update_fields=["access_ended_at"])
        revoke_receiver_permissions(locked)
        ReferralEvent.objects.create(
            referral=locked, verb="access_ended", state=locked.state, by=by
        )
        record(
            by if by is not None else "system:consent_expiry",
            REFERRAL_ACCESS_WITHDRAWN,
            target=locked,
            family=locked.family,
            agency_id=locked.to_agency_id,
            purpose="Art. 7 Abs. 3 DSGVO" if reason == "consent_revoked" else "Art. 5 Abs. 1 DSGVO",
            details={"reason": reason, "to_agency": locked.to_agency_id},
        )
        notify_of(
            [*receiving_leads(locked), locked.assignee, locked.created_by],
            locked,
            "referral.access_ended",
            gettext_lazy("Einwilligung beendet: Zugriff der empfangenden Stelle entzogen"),
        )


def hide_after_restriction(*, family: Family, by: User) -> None:
    """Handler of dienstweg.hooks.processing_restricted, in the restricting transaction:
    the receiving agencies' sockets re-check the family's referral threads. Nothing is
    withdrawn (access.py hides the referrals while restricted), so lifting restores it."""
    sent = Referral.objects.filter(family=family, sent_at__isnull=False)
    receivers = Membership.objects.filter(agency_id__in=sent.values("to_agency_id"))
    events.access_revoked(
        [
            *receivers.values_list("user_id", flat=True),
            *sent.filter(assignee__isnull=False).values_list("assignee_id", flat=True),
        ]
    )


def referrals_losing_access(consent: Consent) -> QuerySet[Referral]:
    """The sent referrals whose receiving agency would lose its access if CONSENT were
    revoked (withdraw_access_after_revocation, asked before)."""
    return (
        Referral.objects.filter(
            consents=consent, access_ended_at__isnull=True, sent_at__isnull=False
        )
        .exclude(state__in=[Referral.State.WITHDRAWN])
        .order_by("sent_at")
    )


def referral_label(referral: Referral) -> str:
    """The referral as a confirmation names it: "Vermittlung F-2026-0001 vom 01.12.2026
    (gesendet)". Needs its family loaded (select_related)."""
    return _("Vermittlung %(ref)s vom %(date)s (%(state)s)") % {
        "ref": referral.family.reference,
        "date": date_format(timezone.localtime(referral.sent_at), "SHORT_DATE_FORMAT"),
        "state": referral.get_state_display(),
    }


def losses_on_revocation(consent: Consent) -> list[Loss]:
    """Handler of dienstweg.hooks.revocation_losses: the referrals whose receiving agency
    would lose its access (referrals_losing_access)."""
    losing = referrals_losing_access(consent).select_related("family", "to_agency")
    return [
        Loss(agency=referral.to_agency.name, what=referral_label(referral)) for referral in losing
    ]


def withdraw_access_after_revocation(*, consent: Consent, by: User) -> None:
    """Handler of dienstweg.hooks.consent_revoked: runs in the revoking transaction."""
    for referral in Referral.objects.filter(consents=consent, access_ended_at__isnull=True):
        end_receiver_access(referral, reason="consent_revoked", by=by)


def end_expired_access() -> int:
    """Withdraw the permissions of referrals whose consent has expired (they are already
    hidden from the receiving agency by the date; this tidies the permissions and records
    the end in the trail)."""
    expired = Referral.objects.filter(
        access_until__lt=timezone.localdate(), access_ended_at__isnull=True
    )
    count = 0
    for referral in expired.iterator():
        end_receiver_access(referral, reason="consent_expired", by=None)
        count += 1
    return count
