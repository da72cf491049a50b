"""Restriction of processing (GDPR Art. 18, SGB X § 84): the DPO restricts a family's
processing with a reason, and lifts it. Both are forms on the family's console page
(console/_restriction.html) and lead back to it."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from dienstweg.actions import ActionError, lift_restriction, restrict_processing
from dienstweg.models import Family, User
from privacy.access import console_dpo, console_scope, record_dpo
from privacy.audit_actions import CONSOLE_RESTRICTION_REFUSED
from privacy.views.subjects import UnknownFamily, family_by_reference, subject_page

Change = Callable[[Family, User, int], Family]


@require_POST
def restrict(request: HttpRequest, reference: str) -> HttpResponse:
    """Restrict the family's processing with the reason from the form."""
    reason = request.POST.get("reason", "")
    return _change(
        request,
        reference,
        "restrict",
        reason,
        lambda family, by, agency_id: restrict_processing(
            family, reason=reason, by=by, agency_id=agency_id
        ),
        _(
            "Die Verarbeitung ist eingeschränkt: Die Daten der Familie werden über das Projekt "
            "hinaus weder weitergegeben noch angezeigt."
        ),
    )


@require_POST
def lift(request: HttpRequest, reference: str) -> HttpResponse:
    """Lift the family's restriction, with an optional note."""
    note = request.POST.get("note", "")
    return _change(
        request,
        reference,
        "lift",
        note,
        lambda family, by, agency_id: lift_restriction(
            family, note=note, by=by, agency_id=agency_id
        ),
        _(
            "Die Einschränkung ist aufgehoben: Die Daten werden wieder so geteilt, wie die "
            "Einwilligungen der Familie es erlauben."
        ),
    )


def _change(
    request: HttpRequest, reference: str, verb: str, text: str, change: Change, done: str
) -> HttpResponse:
    dpo = console_dpo(request)
    try:
        family = family_by_reference(request, reference)
    except UnknownFamily as unknown:
        if not unknown.refused:
            record_dpo(request, CONSOLE_RESTRICTION_REFUSED, details={"verb": verb, "found": False})
        messages.error(
            request,
            _("Keine Familie mit der Kennung „%(reference)s“.") % {"reference": reference.strip()},
        )
        return render(request, "console/base.html", status=404)
    # Recorded under the family's own controller when she is its DPO.
    agency_id = console_scope(request).acting_agency_for(family)
    try:
        change(family, dpo, agency_id)
    except ActionError as error:
        # The action changed nothing; the attempt itself is recorded.
        record_dpo(
            request,
            CONSOLE_RESTRICTION_REFUSED,
            target=family,
            family=family,
            details={"verb": verb, "found": True},
        )
        # The page comes back with the text as typed and the reason beside it.
        kept = {"verb": verb, "text": text, "error": str(error)}
        family.refresh_from_db()  # as it is now (another tab may have changed it)
        return subject_page(request, family, kept)
    messages.success(request, done)
    return redirect("console:subject", reference=family.reference)
