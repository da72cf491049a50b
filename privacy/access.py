"""Who reaches the console: members with the dpo role, and nobody else. A refusal is
audited. The console shows the trail's metadata only; it never opens case content.

The gate (dpo_only) is applied once, to every pattern of privacy/urls.py; the views find
the DPO it let in with console_dpo(request)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, cast

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponseBase
from django.utils.translation import gettext as _

from audit.models import AuditEvent
from audit.trail import DataSubject, Target, record
from dienstweg.access import DPO_ROLES, agency_ids_of, staff
from dienstweg.models import User
from privacy.audit_actions import CONSOLE_ACCESS_DENIED

View = Callable[..., HttpResponseBase]


def dpo_agency_id(user: User) -> int | None:
    """The agency in which the user is data-protection officer; None if she is none."""
    return min(agency_ids_of(user, DPO_ROLES), default=None)


def dpo_only(view: View) -> View:
    """VIEW for the DPO only: anyone else gets 403, recorded as console.access_denied.
    Runs before the view's own checks (methods too), so nothing of the view answers a
    non-DPO; the view reads the DPO with console_dpo(request)."""

    @wraps(view)
    def gated(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        request.dpo = require_dpo(request)  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    gated.dpo_only = True  # type: ignore[attr-defined]
    return gated


def console_dpo(request: HttpRequest) -> User:
    """The DPO whom dpo_only let through to this console view."""
    dpo = getattr(request, "dpo", None)
    if dpo is None:
        # A console view reached without the gate is a wiring mistake, never a user's.
        raise RuntimeError("console view without dpo_only (privacy/urls.py)")
    return cast(User, dpo)


def require_dpo(request: HttpRequest) -> User:
    """The signed-in DPO, or 403 (recorded as console.access_denied)."""
    user = staff(request)
    agency_id = dpo_agency_id(user)
    if agency_id is None:
        with transaction.atomic():
            record(
                user,
                CONSOLE_ACCESS_DENIED,
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
