"""Pages of referrals (inbox, outbox, detail, the steps) and application tags."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db.models import Avg, Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dienstweg.access import access_family_by_id, holds_role, staff
from dienstweg.actions import ActionError
from dienstweg.models import DataCategory, User
from dienstweg.paging import keyset_page, numbered_page
from referrals import actions
from referrals.access import (
    REFERRING_ROLES,
    TagLookupThrottled,
    TagRefused,
    access_attachment_by_id,
    access_referral_by_id,
    access_tag_by_code,
    check_lookup_throttle,
    inbox_of,
    normalize_code,
    outbox_of,
    reach_of,
    side_of,
    tag_consented,
    tags_visible_to,
)
from referrals.forms import (
    AssignForm,
    NoteForm,
    ReferralFilterForm,
    ReferralForm,
    TagForm,
    TagLookupForm,
    TagStatusForm,
)
from referrals.models import ApplicationTag, Referral
from referrals.stamp import StampData, render_stamp

# Lists


def _filtered(
    referrals: QuerySet[Referral], request: HttpRequest, *, agency_field: str
) -> tuple[QuerySet[Referral], ReferralFilterForm]:
    form = ReferralFilterForm(request.GET or None)
    if form.is_valid():
        data = form.cleaned_data
        if data["state"]:
            referrals = referrals.filter(state=data["state"])
        if data["agency"]:
            referrals = referrals.filter(**{agency_field: data["agency"]})
        if data["assignee"] == "me":
            referrals = referrals.filter(assignee=staff(request))
        elif data["assignee"] == "none":
            referrals = referrals.filter(assignee__isnull=True)
        if data["overdue"]:
            referrals = referrals.filter(
                state=Referral.State.SENT, sent_at__lt=actions.overdue_since()
            )
    return referrals, form


def _list(request: HttpRequest, referrals: QuerySet[Referral], *, inbox: bool) -> HttpResponse:
    referrals, form = _filtered(
        referrals, request, agency_field="from_agency" if inbox else "to_agency"
    )
    # Metadata only: no need, summary or names on the lists (those are read, audited, on
    # the referral's own page). Newest first, found by keyset: a deep page of a big inbox
    # reads its own rows only, not every permission before it.
    page = keyset_page(
        referrals.select_related("family", "from_agency", "to_agency", "assignee").only(
            "id",
            "state",
            "basis",
            "sent_at",
            "created_at",
            "access_ended_at",
            "dpo_review",
            "family__reference",
            "from_agency__name",
            "to_agency__name",
            "assignee__full_name",
        ),
        request,
        field="sent_at" if inbox else "created_at",
        size=settings.REFERRAL_PAGE_SIZE,
    )
    overdue_since = actions.overdue_since()
    for referral in page.object_list:
        referral.overdue = (
            referral.state == Referral.State.SENT
            and referral.sent_at is not None
            and referral.sent_at < overdue_since
        )
    return render(
        request,
        "referrals/referral_list.html",
        {"page": page, "form": form, "inbox": inbox},
    )


@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    """Referrals received by the user's agencies."""
    return _list(request, inbox_of(staff(request)), inbox=True)


@require_GET
def outbox(request: HttpRequest) -> HttpResponse:
    """Referrals sent by the user's agencies, with their state and outcome."""
    return _list(request, outbox_of(staff(request)), inbox=False)


# Creating


@require_http_methods(["GET", "POST"])
def referral_new(request: HttpRequest, family_id: str) -> HttpResponse:
    user = staff(request)
    family = access_family_by_id(user, family_id)
    if family.is_erased:
        messages.error(request, _("Die Daten dieser Familie sind gelöscht."))
        return redirect(reverse("family_detail", args=[family.pk]))
    basis = request.GET.get("grundlage", Referral.Basis.CONSENT)
    if basis not in Referral.Basis.values:
        raise Http404
    if not holds_role(user, *REFERRING_ROLES, agency=family.owner_id):
        messages.error(request, _("Vermitteln dürfen Coaches und Leitungen des Projekts."))
        return redirect(reverse("family_detail", args=[family.pk]))
    form = ReferralForm(request.POST or None, request.FILES or None, family=family, basis=basis)
    if request.method == "POST" and form.is_valid():
        send = "draft" not in request.POST
        try:
            referral = actions.refer_family(family, data=form.to_data(), send=send, by=user)
        except ActionError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _state_message(referral))
            return redirect(reverse("referral_detail", args=[referral.pk]))
    return render(
        request,
        "referrals/referral_form.html",
        {"form": form, "family": family, "basis": basis, "Basis": Referral.Basis},
    )


def _state_message(referral: Referral) -> str:
    return {
        Referral.State.DRAFT: _("Entwurf gespeichert."),
        Referral.State.SENT: _("Vermittlung gesendet."),
        Referral.State.PENDING_APPROVAL: _("Zur Freigabe vorgelegt."),
    }.get(Referral.State(referral.state), _("Gespeichert."))


# One referral


@require_GET
def referral_detail(request: HttpRequest, referral_id: str) -> HttpResponse:
    user = staff(request)
    # One look at the user's memberships serves the access check, her side and the rules.
    reach = reach_of(user)
    referral = access_referral_by_id(user, referral_id, reach)
    side = side_of(user, referral, reach)
    actions.record_referral_read(referral, action="referral.viewed", side=side, by=user)
    may = {verb: rule.permits(user, referral, reach.roles) for verb, rule in actions.RULES.items()}
    return referral_page(request, referral, side=side, may=may)


def referral_page(
    request: HttpRequest, referral: Referral, *, side: str, may: dict[str, bool]
) -> HttpResponse:
    """The referral's page for a user on SIDE who may take the steps in MAY (bench/step3.py
    renders its plain twin with it)."""
    snapshot = json.loads(referral.unseal("snapshot") or "{}")
    # Sent: exactly what was sent. A draft: what the coach has written so far.
    notes = snapshot["notes"] if snapshot else json.loads(referral.unseal("category_notes"))
    return render(
        request,
        "referrals/referral_detail.html",
        {
            "referral": referral,
            "side": side,
            "need": referral.unseal("need"),
            "summary": referral.unseal("summary"),
            "basis_reason": referral.unseal("basis_reason"),
            "decision_note": referral.unseal("decision_note"),
            "outcome": referral.unseal("outcome"),
            "identity": snapshot.get("identity"),
            "notes": [(DataCategory(c).label, notes[c]) for c in referral.categories if c in notes],
            "events": referral.events.select_related("by"),
            "attachments": [(a, a.unseal("name")) for a in referral.attachments.all()],
            "may": may,
            "assign_form": AssignForm(agency_id=referral.to_agency_id) if may["assign"] else None,
            "note_form": NoteForm(),
            "receiver_access": actions.receiver_access(referral),
        },
    )


def _note(request: HttpRequest) -> str:
    form = NoteForm(request.POST)
    return form.cleaned_data["note"] if form.is_valid() else ""


def _assignee(request: HttpRequest, referral: Referral) -> User:
    form = AssignForm(request.POST, agency_id=referral.to_agency_id)
    if not form.is_valid():
        raise ActionError(_("Bitte eine Fachkraft der Stelle wählen."))
    assignee: User = form.cleaned_data["assignee"]
    return assignee


Step = Callable[[Referral, User, HttpRequest], Referral]

# Each step of a referral: the action it runs and what the user is told when it worked.
STEPS: dict[str, tuple[Step, Promise]] = {
    "send": (
        lambda r, by, request: actions.send_referral(r, by=by),
        gettext_lazy("Gesendet (oder, ohne Einwilligung, zur Freigabe vorgelegt)."),
    ),
    "approve": (
        lambda r, by, request: actions.approve_referral(r, by=by),
        gettext_lazy("Freigegeben und gesendet."),
    ),
    "refuse": (
        lambda r, by, request: actions.refuse_referral(r, note=_note(request), by=by),
        gettext_lazy("Freigabe verweigert."),
    ),
    "withdraw": (
        lambda r, by, request: actions.withdraw_referral(r, by=by),
        gettext_lazy("Zurückgezogen."),
    ),
    "assign": (
        lambda r, by, request: actions.assign_referral(r, assignee=_assignee(request, r), by=by),
        gettext_lazy("Zugewiesen."),
    ),
    "accept": (
        lambda r, by, request: actions.accept_referral(r, by=by),
        gettext_lazy("Angenommen."),
    ),
    "decline": (
        lambda r, by, request: actions.decline_referral(r, reason=_note(request), by=by),
        gettext_lazy("Abgelehnt."),
    ),
    "complete": (
        lambda r, by, request: actions.complete_referral(r, outcome=_note(request), by=by),
        gettext_lazy("Abgeschlossen."),
    ),
}


@require_POST
def referral_step(request: HttpRequest, referral_id: str, verb: str) -> HttpResponse:
    """One step of the referral (the URL names it); a refused step is shown and audited."""
    run, done = STEPS[verb]
    user = staff(request)
    referral = access_referral_by_id(user, referral_id)
    try:
        run(referral, user, request)
    except ActionError as error:
        actions.record_refused_step(referral, verb=verb, by=user)
        messages.error(request, str(error))
    else:
        messages.success(request, str(done))
    return redirect(reverse("referral_detail", args=[referral.pk]))


@require_GET
def referral_attachment(request: HttpRequest, referral_id: str, attachment_id: str) -> HttpResponse:
    user = staff(request)
    reach = reach_of(user)
    referral = access_referral_by_id(user, referral_id, reach)
    attachment = access_attachment_by_id(user, referral, attachment_id)
    content = attachment.unseal_bytes("content")
    actions.record_referral_read(
        referral,
        action="referral.attachment_downloaded",
        side=side_of(user, referral, reach),
        by=user,
        details={"attachment": str(attachment.pk)},
    )
    return attachment_response(
        content, attachment.content_type, f"anhang-{referral.family.reference}"
    )


EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}


def attachment_response(content: bytes, content_type: str, stem: str) -> HttpResponse:
    """A download that the browser saves rather than renders: our own plain file name (the
    uploaded name may carry personal data or tricks), no type sniffing."""
    response = HttpResponse(content, content_type=content_type)
    extension = EXTENSIONS.get(content_type, "bin")
    response["Content-Disposition"] = f'attachment; filename="{stem}.{extension}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


# Application tags


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
        "referrals/tag_list.html",
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
    return render(request, "referrals/tag_form.html", {"form": form, "family": family})


@require_http_methods(["GET", "POST"])
def tag_lookup(request: HttpRequest) -> HttpResponse:
    """Enter the code from a paper application (scanning the QR code opens the tag
    directly). Sent by POST, so codes stay out of the search history."""
    form = TagLookupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        return redirect(reverse("tag_detail", args=[normalize_code(form.cleaned_data["code"])]))
    try:
        check_lookup_throttle(staff(request))
    except TagLookupThrottled:
        return _throttled(request)
    return render(request, "referrals/tag_lookup.html", {"form": form})


def _throttled(request: HttpRequest) -> HttpResponse:
    return render(request, "referrals/tag_throttled.html", status=429)


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
        return render(request, "referrals/tag_refused.html", {"message": str(refusal)}, status=403)


@require_GET
def tag_detail(request: HttpRequest, code: str) -> HttpResponse:
    opened = _open_tag(request, code, "application_tag.viewed")
    if isinstance(opened, HttpResponse):
        return opened
    tag, side = opened
    covered = side == "office" or tag_consented(tag)
    return render(
        request,
        "referrals/tag_detail.html",
        {
            "tag": tag,
            "side": side,
            "file_number": tag.unseal("file_number"),
            "missing_documents": tag.unseal("missing_documents"),
            "changes": [(c, c.unseal("note")) for c in tag.changes.select_related("by")],
            "status_form": TagStatusForm() if side == "office" else None,
            "covered": covered,
            "project_phone": tag.project.public_phone,
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
        messages.error(request, _("Bitte Stand und Angaben prüfen."))
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
            messages.error(request, str(error))
        else:
            messages.success(request, _("Stand eingetragen; das Projekt wird benachrichtigt."))
    return redirect(reverse("tag_detail", args=[tag.code]))


@require_GET
def tag_stamp(request: HttpRequest, code: str) -> HttpResponse:
    """The printable stamp (PDF) for the paper application; the project's side only."""
    opened = _open_tag(request, code, "application_tag.stamp_printed", sides=("project",))
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
            )
        )
    response = attachment_response(pdf, "application/pdf", f"stempel-{tag.code}")
    return response
