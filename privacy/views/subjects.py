"""Data subjects on the console: find a family by its reference, its page for the DPO, and
its access report (GDPR Art. 15) as HTML, PDF and JSON. Metadata only, every view audited.

Only families the DPO's scope covers (owned by one of her agencies; every family for the
network's DPO): any other reference is answered as one that does not exist, and the refusal
is recorded (privacy.access.refuse_family_outside_scope)."""

from __future__ import annotations

import json
import re
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from dienstweg.models import Family
from privacy.access import console_scope, record_dpo, refuse_family_outside_scope
from privacy.audit_actions import (
    CONSOLE_ACCESS_REPORT,
    CONSOLE_SUBJECT_LOOKUP,
    CONSOLE_SUBJECT_VIEWED,
)
from privacy.reports import AccessReport, build_access_report, render_access_report_pdf

# What a reference looks like ("F-2026-0042"); only such a text may reach the trail's details.
REFERENCE = re.compile(r"F-\d{4}-\d{4,8}")
FORMATS = ("pdf", "json")
# The trail's purpose is one German text whatever the DPO's language.
REPORT_PURPOSE = "Auskunft nach Art. 15 DSGVO"


class UnknownFamily(Exception):
    """No family with this reference that the DPO may see. REFUSED: one exists outside her
    scope, and that refusal is recorded already (the caller records nothing more)."""

    def __init__(self, reference: str, *, refused: bool = False) -> None:
        super().__init__(reference)
        self.reference = reference
        self.refused = refused


def normalize_reference(text: str) -> str:
    return text.strip().upper()


def family_by_reference(request: HttpRequest, reference: str) -> Family:
    """The family with this reference, erased ones too (their tombstone), if the DPO's
    scope covers it; else UnknownFamily, alike for a missing family and one of another
    controller (that refusal recorded here)."""
    family = (
        Family.objects.select_related("owner")
        .filter(reference=normalize_reference(reference))
        .first()
    )
    if family is None:
        raise UnknownFamily(reference)
    if not console_scope(request).covers_family(family):
        refuse_family_outside_scope(request, family)
        raise UnknownFamily(reference, refused=True)
    return family


def _not_found(request: HttpRequest, reference: str) -> HttpResponse:
    return render(
        request,
        "console/subject_lookup.html",
        {"reference": reference, "error": _not_found_message(reference)},
        status=404,
    )


def _not_found_message(reference: str) -> str:
    return _("Keine Familie mit der Kennung „%(reference)s“.") % {"reference": reference.strip()}


@require_GET
def lookup(request: HttpRequest) -> HttpResponse:
    """The form "Kennung der Familie"; a known reference leads to the family's page."""
    reference = request.GET.get("reference", "")
    if "reference" not in request.GET:
        return render(request, "console/subject_lookup.html", {"reference": ""})
    if not reference.strip():
        return render(
            request,
            "console/subject_lookup.html",
            {"reference": "", "error": _("Bitte die Kennung der Familie angeben.")},
            status=400,
        )
    try:
        family = family_by_reference(request, reference)
    except UnknownFamily as unknown:
        if unknown.refused:
            return _not_found(request, reference)
        typed = normalize_reference(reference)
        # Only something shaped like a reference goes into the trail: a name typed into the
        # field by mistake must not.
        record_dpo(
            request,
            CONSOLE_SUBJECT_LOOKUP,
            details={"found": False, "reference": typed if REFERENCE.fullmatch(typed) else ""},
        )
        return _not_found(request, reference)
    record_dpo(
        request, CONSOLE_SUBJECT_LOOKUP, target=family, family=family, details={"found": True}
    )
    return redirect("console:subject", reference=family.reference)


@require_GET
def detail(request: HttpRequest, reference: str) -> HttpResponse:
    """The DPO's page for one family: status, the report's formats, restriction, erasure."""
    try:
        family = family_by_reference(request, reference)
    except UnknownFamily:
        return _not_found(request, reference)
    return subject_page(request, family)


def subject_page(
    request: HttpRequest, family: Family, kept: dict[str, str] | None = None
) -> HttpResponse:
    """The family's console page (its view recorded). KEPT: the verb, text and refusal of
    a restriction or its lifting that was refused, so that the text typed is still there."""
    report_url = reverse("console:access_report", args=[family.reference])
    formats = [
        {
            "staff": staff,
            "html": report_url + ("?staff=1" if staff else ""),
            "pdf": _download_url(family, "pdf", staff=staff),
            "json": _download_url(family, "json", staff=staff),
        }
        for staff in (False, True)
    ]
    context = {"family": family, "formats": formats, "kept": kept or {}}
    record_dpo(request, CONSOLE_SUBJECT_VIEWED, target=family, family=family)
    return render(request, "console/subject.html", context)


def _download_url(family: Family, fmt: str, *, staff: bool) -> str:
    url = reverse("console:access_report_download", args=[family.reference, fmt])
    return url + ("?staff=1" if staff else "")


def _wants_staff_names(request: HttpRequest) -> bool:
    return request.GET.get("staff") in {"1", "on", "true"}


def _report(request: HttpRequest, reference: str) -> tuple[Family, AccessReport] | HttpResponse:
    """The family's report, recorded with its format and whether it names staff; or the
    look-up form with a 404."""
    try:
        family = family_by_reference(request, reference)
    except UnknownFamily:
        return _not_found(request, reference)
    return family, build_access_report(family, staff_names=_wants_staff_names(request))


def _record_report(request: HttpRequest, family: Family, report: AccessReport, fmt: str) -> None:
    record_dpo(
        request,
        CONSOLE_ACCESS_REPORT,
        target=family,
        family=family,
        purpose=REPORT_PURPOSE,
        details={"format": fmt, "staff_names": report.staff_names},
    )


@require_GET
def access_report(request: HttpRequest, reference: str) -> HttpResponse:
    """The access report as a page (printable)."""
    built = _report(request, reference)
    if isinstance(built, HttpResponse):
        return built
    family, report = built
    _record_report(request, family, report, "html")
    context: dict[str, Any] = {"report": report}
    return render(request, "console/access_report.html", context)


@require_GET
def access_report_download(request: HttpRequest, reference: str, fmt: str) -> HttpResponse:
    """The access report as a PDF or JSON download; any other format is 404."""
    if fmt not in FORMATS:
        raise Http404(_("Unbekanntes Format."))
    built = _report(request, reference)
    if isinstance(built, HttpResponse):
        return built
    family, report = built
    _record_report(request, family, report, fmt)
    if fmt == "pdf":
        response = HttpResponse(render_access_report_pdf(report), content_type="application/pdf")
    else:
        body = json.dumps(report.as_json(), cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="auskunft-{report.reference}.{fmt}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
