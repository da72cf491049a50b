"""Who reaches the console: members with a DPO role (of an agency, or of the network), and
nobody else. A refusal is audited. The console shows the trail's metadata only; it never
opens case content.

The gate (dpo_only) is applied once, to every pattern of privacy/urls.py; the views find
the DPO it let in with console_dpo(request), and what she answers for with
console_scope(request): the events in which her agencies acted and the families they own,
or, for the network's DPO, everything (dienstweg.access.DpoScope)."""

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
from dienstweg.access import DpoScope, dpo_scope_of, staff
from dienstweg.models import Family, User
from privacy.audit_actions import CONSOLE_ACCESS_DENIED, CONSOLE_FAMILY_OUT_OF_SCOPE

View = Callable[..., HttpResponseBase]


def dpo_agency_id(user: User) -> int | None:
    """The agency under which the DPO's console steps are recorded (the lowest id of her
    DPO agencies); None if she is no DPO."""
    scope = dpo_scope_of(user)
    return None if scope is None else scope.acting_agency_id


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


def console_scope(request: HttpRequest) -> DpoScope:
    """What the DPO whom dpo_only let through answers for, read once by the gate."""
    scope = getattr(request, "dpo_scope", None)
    if scope is None:
        raise RuntimeError("console view without dpo_only (privacy/urls.py)")
    return cast(DpoScope, scope)


def require_dpo(request: HttpRequest) -> User:
    """The signed-in DPO, or 403 (recorded as console.access_denied). Reads her scope once
    (request.dpo_scope) and the agency her console records name (request.dpo_agency_id)."""
    user = staff(request)
    scope = dpo_scope_of(user)
    if scope is None:
        with transaction.atomic():
            record(
                user,
                CONSOLE_ACCESS_DENIED,
                target=("console.page", request.resolver_match.url_name or "console")
                if request.resolver_match
                else None,
            )
        raise PermissionDenied(_("Nur Datenschutzbeauftragte können die Konsole öffnen."))
    request.dpo_scope = scope  # type: ignore[attr-defined]
    request.dpo_agency_id = scope.acting_agency_id  # type: ignore[attr-defined]
    return user


def refuse_family_outside_scope(request: HttpRequest, family: Family) -> None:
    """Record that the DPO asked for a family her scope does not cover. The page then
    answers as for a family that does not exist; the record names the family, so that its
    own controller sees who asked (as a refused access to a family is recorded)."""
    name = request.resolver_match.url_name if request.resolver_match else None
    record_dpo(
        request,
        CONSOLE_FAMILY_OUT_OF_SCOPE,
        target=family,
        family=family,
        details={"page": name or "console"},
    )


def record_dpo(
    request: HttpRequest,
    action: str,
    *,
    target: Target = None,
    family: DataSubject | None = None,
    purpose: str = "",
    details: Mapping[str, object] | None = None,
) -> AuditEvent:
    """Record a DPO's read or action on the console, in a transaction of its own (for
    reads; an action records inside its own transaction), under the agency she acts for:
    the family's owner when she is its DPO, else her console's agency."""
    agency_id: int | None = getattr(request, "dpo_agency_id", None)
    scope: DpoScope | None = getattr(request, "dpo_scope", None)
    owner = getattr(family, "owner_id", None)
    if scope is not None and owner in scope.agency_ids:
        agency_id = owner
    with transaction.atomic():
        return record(
            staff(request),
            action,
            target=target,
            family=family,
            purpose=purpose,
            details=details,
            agency_id=agency_id,
        )
