"""Who reaches the console: members with the dpo role, and nobody else. A refusal is
audited. The console shows the trail's metadata only; it never opens case content."""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from audit.models import AuditEvent
from audit.trail import DataSubject, Target, record
from dienstweg.access import staff
from dienstweg.models import Membership, User


def dpo_agency_id(user: User) -> int | None:
    """The agency in which the user is data-protection officer; None if she is none."""
    return (
        Membership.objects.filter(user=user, role=Membership.Role.DPO)
        .order_by("agency_id")
        .values_list("agency_id", flat=True)
        .first()
    )


def require_dpo(request: HttpRequest) -> User:
    """The signed-in DPO, or 403 (recorded as console.access_denied)."""
    user = staff(request)
    agency_id = dpo_agency_id(user)
    if agency_id is None:
        with transaction.atomic():
            record(
                user,
                "console.access_denied",
                target=("console.page", request.resolver_match.url_name or "console")
                if request.resolver_match
                else None,
            )
        raise PermissionDenied(_("Nur Datenschutzbeauftragte können die Konsole öffnen."))
    request.dpo_agency_id = agency_id  # type: ignore[attr-defined]
    return user


def record_dpo(
    request: HttpRequest,
    action: str,
    *,
    target: Target = None,
    family: DataSubject | None = None,
    purpose: str = "",
    details: Mapping[str, object] | None = None,
) -> AuditEvent:
    """Record a DPO's read or action on the console, under her DPO agency, in a
    transaction of its own (for reads; an action records inside its own transaction)."""
    with transaction.atomic():
        return record(
            staff(request),
            action,
            target=target,
            family=family,
            purpose=purpose,
            details=details,
            agency_id=getattr(request, "dpo_agency_id", None),
        )
