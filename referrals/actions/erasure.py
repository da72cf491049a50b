"""Erasure of a family's referrals (GDPR Art. 17), run by the DPO console's erasure."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from audit.trail import record
from dienstweg import events
from dienstweg.models import Family, Membership, User
from referrals.audit_actions import FAMILY_CASES_ERASED
from referrals.models import (
    Referral,
    ReferralAttachment,
    ReferralGroupPermission,
    ReferralUserPermission,
)

Basis = Referral.Basis


# Referrals made without consent, on a legal basis: their metadata stays (who sent what
# kind of data to whom, when, on which basis), because the transmission must stay
# documented (§ 8a SGB VIII, § 4 KKG; SGB X).
KEPT_BASES = (Basis.CHILD_PROTECTION, Basis.STATUTORY)
ENCRYPTED_REFERRAL_FIELDS = (
    "need",
    "summary",
    "category_notes",
    "snapshot",
    "basis_reason",
    "decision_note",
    "outcome",
)


@dataclass(frozen=True)
class CaseErasure:
    """What erase_family_cases removed and kept (counts)."""

    referrals_removed: int
    referrals_kept: int
    tags_removed: int
    attachments_removed: int


def erase_family_cases(family: Family, *, tags_removed: int, by: User | str | None) -> CaseErasure:
    """Delete the family's referrals on consent, with their timelines, attachments and
    permissions. Referrals on a legal basis stay as metadata: their encrypted fields and
    attachments are removed and nobody on the platform can open them any more.

    The one `family.cases_erased` event also counts the application tags the caller has
    erased in this transaction (TAGS_REMOVED, from applications.actions.erase_family_tags):
    referrals does not know the tags, and the trail keeps one event for the cases."""
    with transaction.atomic():
        referrals = Referral.objects.filter(family=family)
        kept = referrals.filter(basis__in=KEPT_BASES)
        removed = referrals.exclude(basis__in=KEPT_BASES)
        groups = ReferralGroupPermission.objects.filter(content_object__family=family)
        readers = {
            *Membership.objects.filter(agency__group_id__in=groups.values("group_id")).values_list(
                "user_id", flat=True
            ),
            *ReferralUserPermission.objects.filter(content_object__family=family).values_list(
                "user_id", flat=True
            ),
        }
        attachments, _details = ReferralAttachment.objects.filter(referral__family=family).delete()
        kept_count = kept.update(
            **{f"{name}_enc": b"" for name in ENCRYPTED_REFERRAL_FIELDS}, updated_at=timezone.now()
        )
        ReferralGroupPermission.objects.filter(content_object__in=kept).delete()
        ReferralUserPermission.objects.filter(content_object__in=kept).delete()
        removed_count = removed.count()
        removed.delete()
        erased = CaseErasure(removed_count, kept_count, tags_removed, attachments)
        record(
            by,
            FAMILY_CASES_ERASED,
            target=family,
            family=family,
            purpose="Art. 17 DSGVO",
            details={
                "referrals_removed": removed_count,
                "referrals_kept": kept_count,
                "tags_removed": tags_removed,
                "attachments_removed": attachments,
            },
        )
        # Open pages and sockets of everyone who could see a referral re-check at once.
        events.access_revoked(readers)
        return erased
