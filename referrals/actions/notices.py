"""Whom the steps of a referral notify, and the notification itself: only the
pseudonymous reference and a link leave the platform."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext_lazy

from dienstweg.access import Role, members_holding
from dienstweg.models import User
from dienstweg.notifications import notify
from referrals.models import Referral


def receiving_leads(referral: Referral) -> list[User]:
    """Who is told of an incoming referral: the agency's leads, or its caseworkers if it
    has no lead."""
    for role in (Role.LEAD, Role.CASEWORKER):
        users = list(members_holding(role, agencies=referral.to_agency_id))
        if users:
            return users
    return []


def notify_sending_leads(referral: Referral, *, exclude: User) -> None:
    leads = members_holding(Role.LEAD, agencies=referral.from_agency_id).exclude(pk=exclude.pk)
    notify_of(leads, referral, "referral.approval_requested", gettext_lazy("Freigabe erbeten"))


def notify_of(users: Iterable[User | None], referral: Referral, kind: str, title: Any) -> None:
    notify(
        [user for user in users if user is not None],
        kind=kind,
        title=title,
        family_ref=referral.family.reference,
        url=reverse("referral_detail", args=[referral.pk]),
    )
