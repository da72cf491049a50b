"""Pages of application tags: the coach's list, tagging an application, the look-up by
code, the tag's page with the processing office's step, and the printable stamp."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db.models import Avg, Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from applications import actions
from applications.access import (
    TagLookupThrottled,
    TagRefused,
    access_tag_by_code,
    check_lookup_throttle,
    normalize_code,
    tag_consented,
    tag_sides_of,
    tags_visible_to,
)
from applications.audit_actions import TAG_STAMP_PRINTED, TAG_VIEWED
from applications.forms import TagForm, TagLookupForm, TagStatusForm
from applications.models import ApplicationTag
from applications.stamp import StampData, render_stamp
from dienstweg.access import access_family_by_id, staff
from dienstweg.actions import ActionError
from dienstweg.compiled import planned_once
from dienstweg.paging import numbered_page
from dienstweg.uploads import attachment_response


@require_GET
def tag_list(request: HttpRequest) -> HttpResponse:
    """The coach's tagged applications, open requests for documents first, with the days
    from submission to decision per kind."""
    return tag_list_of(request, tags_visible_to(staff(request)), numbered_page)


Paging = Callable[[QuerySet[Any], HttpRequest, int], Any]


def tag_list_of(
    request: HttpRequest, tags: QuerySet[ApplicationTag], paging: Paging
) -> HttpResponse:
    """The tag list page for these tags (bench/step3.py renders its plain twin with it)."""
    page = paging(
        tags.select_related("family", "processing_agency", "coach").only(
            "code",
            "kind",
            "state",
            "submitted_on",
            "decided_on",
            "updated_at",
            "family__reference",
            "processing_agency__name",
            "coach__full_name",
        ),
        request,
        settings.REFERRAL_PAGE_SIZE,
    )
    durations = (
        tags.filter(days_to_decision__isnull=False)
        .order_by()
        .values("kind")
        # Counting days_to_decision (not the id) reads only the index tag_project_kind.
        .annotate(count=Count("days_to_decision"), average=Avg("days_to_decision"))
    )
    return render(
        request,
        "applications/tag_list.html",
        {
            "page": page,
            "durations": [
                {
                    "kind": ApplicationTag.Kind(row["kind"]).label,
                    "count": row["count"],
                    "average": row["average"],
                }
                for row in durations
            ],
            "lookup_form": TagLookupForm(),
            "sides": tag_sides_of(staff(request)),
        },
    )


@require_http_methods(["GET", "POST"])
def tag_new(request: HttpRequest, family_id: str) -> HttpResponse:
    user = staff(request)
    family = access_family_by_id(user, family_id)
    if family.is_erased:
        messages.error(request, _("Die Daten dieser Familie sind gelöscht."))
        return redirect(reverse("family_detail", args=[family.pk]))
    form = TagForm(request.POST or None, family=family)
    if request.method == "POST" and form.is_valid():
        try:
            tag = actions.tag_application(family, data=form.to_data(), by=user)
        except ActionError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Antrag markiert. Drucken Sie jetzt den Stempel."))
            return redirect(reverse("tag_detail", args=[tag.code]))
    return render(request, "applications/tag_form.html", {"form": form, "family": family})


@require_http_methods(["GET", "POST"])
def tag_lookup(request: HttpRequest) -> HttpResponse:
    """Enter the code from a paper application (scanning the QR code opens the tag
    directly). Sent by POST, so codes stay out of the search history."""
    form = TagLookupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # The tag's page is the answer to the POST itself: a redirect would put the code
        # into the address bar, the history and the server's access log.
        try:
            return _tag_page(request, normalize_code(form.cleaned_data["code"]))
        except Http404:
            # Counted and audited as a failure by access_tag_by_code; no dead end.
            form.add_error("code", NOT_FOUND)
            return render(request, "applications/tag_lookup.html", {"form": form}, status=404)
    try:
        check_lookup_throttle(staff(request))
    except TagLookupThrottled:
        return _throttled(request)
    return render(request, "applications/tag_lookup.html", {"form": form})


NOT_FOUND = gettext_lazy(
    "Unter diesem Code findet sich kein Antrag für Ihre Stelle. Bitte vergleichen Sie die "
    "zwölf Zeichen mit dem Stempel (die Bindestriche dürfen fehlen) und versuchen Sie es "
    "erneut, oder scannen Sie den QR-Code."
)


def _throttled(request: HttpRequest) -> HttpResponse:
    return render(request, "applications/tag_throttled.html", status=429)


def _open_tag(
    request: HttpRequest,
    code: str,
    action: str | None,
    sides: tuple[str, ...] = ("project", "office"),
) -> tuple[ApplicationTag, str] | HttpResponse:
    try:
        return access_tag_by_code(staff(request), code, action=action, sides=sides)
    except TagLookupThrottled:
        return _throttled(request)
    except TagRefused as refusal:
        return render(
            request, "applications/tag_refused.html", {"message": str(refusal)}, status=403
        )


@require_GET
@planned_once()
def tag_detail(request: HttpRequest, code: str) -> HttpResponse:
    return _tag_page(request, code)


def _tag_page(
    request: HttpRequest, code: str, status_form: TagStatusForm | None = None
) -> HttpResponse:
    """The tag's page (its view recorded); STATUS_FORM: a status entry that was refused,
    with what was typed in it."""
    opened = _open_tag(request, code, TAG_VIEWED)
    if isinstance(opened, HttpResponse):
        return opened
    tag, side = opened
    covered = side == "office" or tag_consented(tag)
    return render(
        request,
        "applications/tag_detail.html",
        {
            "tag": tag,
            "side": side,
            "file_number": tag.decrypt_field("file_number"),
            "missing_documents": tag.decrypt_field("missing_documents"),
            "changes": [(c, c.decrypt_field("note")) for c in tag.changes.select_related("by")],
            "status_form": (status_form or TagStatusForm()) if side == "office" else None,
            "covered": covered,
            "project_phone": tag.project.public_phone,
            "coach_phone": tag.coach_direct_phone(),
        },
    )


@require_POST
def tag_status(request: HttpRequest, code: str) -> HttpResponse:
    opened = _open_tag(request, code, None)
    if isinstance(opened, HttpResponse):
        return opened
    tag, side = opened
    form = TagStatusForm(request.POST)
    if side != "office":
        actions.record_refused_step(tag, verb="status", by=staff(request))
        messages.error(request, _("Den Stand trägt die bearbeitende Stelle ein."))
    elif not form.is_valid():
        # The page comes back with what was typed and the reasons beside the fields.
        return _tag_page(request, code, form)
    else:
        data = form.cleaned_data
        try:
            actions.record_tag_status(
                tag,
                state=data["state"],
                note=data["note"],
                decided_on=data["decided_on"],
                by=staff(request),
            )
        except ActionError as error:
            actions.record_refused_step(tag, verb="status", by=staff(request))
            form.add_error(None, str(error))
            return _tag_page(request, code, form)
        else:
            messages.success(request, _("Stand eingetragen; das Projekt wird benachrichtigt."))
    return redirect(reverse("tag_detail", args=[tag.code]))


@require_GET
def tag_stamp(request: HttpRequest, code: str) -> HttpResponse:
    """The printable stamp (PDF) for the paper application; the project's side only."""
    opened = _open_tag(request, code, TAG_STAMP_PRINTED, sides=("project",))
    if isinstance(opened, HttpResponse):
        return opened
    tag, _side = opened
    location = tag.project.locations.first()
    address = [location.street, f"{location.postal_code} {location.city}"] if location else []
    # German whatever the coach's language: the stamp is read at a German authority. The QR
    # code links to the configured public address, not to whatever host served this page.
    with translation.override("de"):
        pdf = render_stamp(
            StampData(
                project_name=tag.project.name,
                project_address=[line for line in address if line.strip()],
                project_phone=tag.project.public_phone,
                contact_name=tag.coach.full_name if tag.coach else "",
                code=tag.code,
                url=settings.DIENSTWEG_BASE_URL.rstrip("/")
                + reverse("tag_detail", args=[tag.code]),
                kind_label=str(ApplicationTag.Kind(tag.kind).label),
                submitted_on=tag.submitted_on,
                contact_phone=tag.coach_direct_phone(),
            )
        )
    response = attachment_response(pdf, "application/pdf", f"stempel-{tag.code}")
    return response
