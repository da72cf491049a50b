"""Pages of Familienkonferenzen: convene, the conference, its calendar file, cancel, and
the list of one's conferences."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from conferences import actions, receipts
from conferences.access import (
    PROJECT,
    THREAD_KIND,
    access_agreement_by_id,
    access_conference_by_id,
    access_consultation_by_id,
    acting_for,
    agreements_of,
    conferences_visible_to,
    consultation_side,
    consultations_visible_to,
    may_convene,
    participants_of,
    report_scope,
    require_report_scope,
    side_of,
)
from conferences.actions.agreements import acts_for
from conferences.audit_actions import (
    AGREEMENT_RECEIPT,
    CONFERENCE_CALENDAR,
    CONFERENCE_VIEWED,
    PROTOCOL_DOWNLOADED,
    REPORT_EXPORTED,
    REPORT_VIEWED,
)
from conferences.calendar import calendar_file
from conferences.forms import (
    AgreementForm,
    AnswerForm,
    CloseForm,
    ConferenceForm,
    ConsultationForm,
    ReportForm,
)
from conferences.models import Agreement, Conference, Consultation
from conferences.protocol import render_protocol_pdf
from conferences.queue import OPEN as OPEN_STATES
from conferences.report import Period, build_report, csv_rows
from conferences.report_pdf import render_report_pdf
from dienstweg.access import Reach, access_family_by_id, reach_of, staff
from dienstweg.actions import ActionError
from dienstweg.compiled import planned_once
from dienstweg.models import DataCategory, User
from dienstweg.paging import numbered_page
from dienstweg.snapshot import readable_identity
from messaging import actions as messaging_actions

PAGE_SIZE = 25


@require_http_methods(["GET", "POST"])
def conference_new(request: HttpRequest, family_id: str) -> HttpResponse:
    user = staff(request)
    family = access_family_by_id(user, family_id)
    back = reverse("family_detail", args=[family.pk])
    if family.is_erased:
        messages.error(request, _("Die Daten dieser Familie sind gelöscht."))
        return redirect(back)
    if not may_convene(user, family):
        messages.error(
            request, _("Familienkonferenzen berufen Coaches und Leitungen des Projekts ein.")
        )
        return redirect(back)
    form = ConferenceForm(request.POST or None, family=family)
    if request.method == "POST" and form.is_valid():
        try:
            conference = actions.convene_conference(family, data=form.to_data(), by=user)
        except ActionError as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request, _("Familienkonferenz einberufen; die Eingeladenen sind benachrichtigt.")
            )
            return redirect(reverse("conference_detail", args=[conference.pk]))
    return render(request, "conferences/conference_form.html", {"form": form, "family": family})


@require_GET
def conference_detail(request: HttpRequest, conference_id: str) -> HttpResponse:
    user = staff(request)
    # Its rule and joins took PostgreSQL longer to plan than to run (dienstweg/compiled.py).
    with planned_once():
        reach = reach_of(user)
        conference = access_conference_by_id(user, conference_id, reach)
        side = side_of(conference, reach)
        actions.record_conference_read(conference, action=CONFERENCE_VIEWED, side=side, by=user)
        return _page(request, conference, user=user, reach=reach, side=side)


def _page(
    request: HttpRequest,
    conference: Conference,
    *,
    user: User,
    reach: Reach,
    side: str,
    agreement_form: AgreementForm | None = None,
) -> HttpResponse:
    """The conference's page (with AGREEMENT_FORM as it came back, if it did)."""
    snapshot = json.loads(conference.decrypt_field("snapshot") or "{}")
    notes = [
        (str(DataCategory(category).label), text)
        for category, text in snapshot.get("notes", {}).items()
    ]
    convenes = side == PROJECT and may_convene(reach, conference.family)
    planned = conference.state == Conference.State.PLANNED
    agreements = agreements_of(conference)
    acting = acting_for(user, conference, reach)
    rows = [
        AgreementRow(
            agreement,
            agreement.decrypt_field("what"),
            agreement.decrypt_field("outcome_note"),
            may_confirm=agreement.state == Agreement.State.OPEN and agreement.agency_id in acting,
            may_close=agreement.is_open and (convenes or agreement.agency_id in acting),
        )
        for agreement in agreements
    ]
    # A follow-up starts from the open agreements of the conference before (one query,
    # asked also when there is none, so that every page costs the same).
    previous = [
        (agreement, agreement.decrypt_field("what"))
        for agreement in Agreement.objects.filter(
            conference_id=cast(Any, conference.follows_id), state__in=OPEN_STATES
        ).select_related("agency", "conference__family__data_key")
    ]
    participants = participants_of(conference)
    if agreement_form is None and convenes and planned:
        agreement_form = AgreementForm(conference=conference, invitations=participants)
    return render(
        request,
        "conferences/conference_detail.html",
        {
            "conference": conference,
            "side": side,
            "place": conference.decrypt_field("place"),
            "video_link": conference.decrypt_field("video_link"),
            "agenda": conference.decrypt_field("agenda"),
            "identity": readable_identity(snapshot.get("identity")),
            "notes": notes,
            "participants": participants,
            "may_cancel": convenes and planned,
            "convenes": convenes,
            "is_past": conference.ends_at < timezone.now(),
            "today": timezone.localdate(),
            "rows": rows,
            "previous": previous,
            "agreement_form": agreement_form if convenes and planned else None,
        },
    )


@require_GET
def conference_calendar(request: HttpRequest, conference_id: str) -> HttpResponse:
    user = staff(request)
    reach = reach_of(user)
    conference = access_conference_by_id(user, conference_id, reach)
    actions.record_conference_read(
        conference, action=CONFERENCE_CALENDAR, side=side_of(conference, reach), by=user
    )
    response = HttpResponse(calendar_file(conference), content_type="text/calendar; charset=utf-8")
    name = f"familienkonferenz-{conference.family.reference}.ics"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_http_methods(["GET", "POST"])
def conference_cancel(request: HttpRequest, conference_id: str) -> HttpResponse:
    """Cancelling asks first (an irreversible step): GET shows what follows, POST does it."""
    user = staff(request)
    reach = reach_of(user)
    conference = access_conference_by_id(user, conference_id, reach)
    page = reverse("conference_detail", args=[conference.pk])
    if request.method == "POST":
        try:
            actions.cancel_conference(conference, by=user)
        except ActionError as error:
            messages.error(request, str(error))
        else:
            messages.success(
                request, _("Familienkonferenz abgesagt; die Eingeladenen sind benachrichtigt.")
            )
        return redirect(page)
    if not may_convene(reach, conference.family):
        messages.error(request, _("Absagen dürfen Coaches und Leitungen des Projekts."))
        return redirect(page)
    return render(
        request,
        "conferences/conference_cancel.html",
        {"conference": conference, "participants": participants_of(conference)},
    )


@require_GET
def conference_list(request: HttpRequest) -> HttpResponse:
    """The conferences she may open: the coming ones first (soonest first), then the past."""
    user = staff(request)
    now = timezone.now()
    visible = conferences_visible_to(user, reach_of(user)).select_related("family", "project")
    coming = numbered_page(
        visible.filter(starts_at__gte=now).order_by("starts_at", "pk"), request, PAGE_SIZE
    )
    past = list(visible.filter(starts_at__lt=now).order_by("-starts_at", "-pk")[:PAGE_SIZE])
    reach = reach_of(user)
    consultations = [
        (consultation, consultation_side(consultation, reach))
        for consultation in consultations_visible_to(user, reach)
        .select_related("family", "project")
        .order_by("-created_at", "-pk")[:PAGE_SIZE]
    ]
    return render(
        request,
        "conferences/conference_list.html",
        {
            "page": coming,
            "past": past,
            "consultations": consultations,
            "may_report": report_scope(user, reach) is not None,
        },
    )


# Agreements


@dataclass(frozen=True)
class AgreementRow:
    """An agreement as the page shows it, with what this user may do with it."""

    agreement: Agreement
    what: str
    outcome_note: str
    may_confirm: bool
    may_close: bool


@require_POST
def agreement_new(request: HttpRequest, conference_id: str) -> HttpResponse:
    user = staff(request)
    reach = reach_of(user)
    conference = access_conference_by_id(user, conference_id, reach)
    side = side_of(conference, reach)
    form = AgreementForm(
        request.POST, conference=conference, invitations=participants_of(conference)
    )
    if form.is_valid():
        try:
            agreement = actions.record_agreement(conference, data=form.to_data(), by=user)
        except ActionError as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request, _("Vereinbarung %(number)d festgehalten.") % {"number": agreement.number}
            )
            return redirect(reverse("conference_detail", args=[conference.pk]) + "#vereinbarungen")
    # The page comes back with the conference's content: opened again, as far as the trail goes.
    actions.record_conference_read(conference, action=CONFERENCE_VIEWED, side=side, by=user)
    return _page(request, conference, user=user, reach=reach, side=side, agreement_form=form)


@require_http_methods(["GET", "POST"])
def agreement_confirm(request: HttpRequest, conference_id: str, agreement_id: str) -> HttpResponse:
    """Confirming binds the agency: GET says so first, POST confirms."""
    user = staff(request)
    agreement = access_agreement_by_id(user, conference_id, agreement_id)
    page = reverse("conference_detail", args=[conference_id]) + "#vereinbarungen"
    if request.method == "POST":
        try:
            actions.confirm_agreement(agreement, by=user)
        except ActionError as error:
            messages.error(request, str(error))
        else:
            messages.success(
                request,
                _("Vereinbarung %(number)d verbindlich bestätigt; die Bestätigung ist signiert.")
                % {"number": agreement.number},
            )
        return redirect(page)
    if agreement.state != Agreement.State.OPEN or not acts_for(user, agreement):
        messages.error(request, _("Bestätigen kann nur die zuständige Stelle, solange offen."))
        return redirect(page)
    return render(
        request,
        "conferences/agreement_confirm.html",
        {"agreement": agreement, "what": agreement.decrypt_field("what")},
    )


@require_http_methods(["GET", "POST"])
def agreement_close(request: HttpRequest, conference_id: str, agreement_id: str) -> HttpResponse:
    user = staff(request)
    agreement = access_agreement_by_id(user, conference_id, agreement_id)
    page = reverse("conference_detail", args=[conference_id]) + "#vereinbarungen"
    form = CloseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            actions.close_agreement(
                agreement,
                done=data["outcome"] == "done",
                reason=data["reason"],
                note=data["note"],
                by=user,
            )
        except ActionError as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request, _("Vereinbarung %(number)d beendet.") % {"number": agreement.number}
            )
            return redirect(page)
    return render(
        request,
        "conferences/agreement_close.html",
        {"agreement": agreement, "what": agreement.decrypt_field("what"), "form": form},
    )


@require_GET
def agreement_receipt(request: HttpRequest, conference_id: str, agreement_id: str) -> HttpResponse:
    """The signed confirmation as the JSON file one keeps."""
    user = staff(request)
    reach = reach_of(user)
    agreement = access_agreement_by_id(user, conference_id, agreement_id, reach)
    if not agreement.receipt:
        raise Http404
    actions.record_agreement_read(agreement, action=AGREEMENT_RECEIPT, by=user)
    response = HttpResponse(
        receipts.dumps(json.loads(agreement.receipt)), content_type="application/json"
    )
    name = f"bestaetigung-{agreement.conference.family.reference}-{agreement.number}.json"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_GET
def conference_protocol(request: HttpRequest, conference_id: str) -> HttpResponse:
    """The protocol for the family (PDF), made by the project, which hands it over."""
    user = staff(request)
    reach = reach_of(user)
    conference = access_conference_by_id(user, conference_id, reach)
    if side_of(conference, reach) != PROJECT:
        raise Http404
    actions.record_conference_read(conference, action=PROTOCOL_DOWNLOADED, side=PROJECT, by=user)
    pdf = render_protocol_pdf(
        conference,
        agreements=agreements_of(conference),
        invitations=participants_of(conference),
    )
    response = HttpResponse(pdf, content_type="application/pdf")
    name = f"familienkonferenz-{conference.family.reference}.pdf"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# Anonymous case consultations


@require_http_methods(["GET", "POST"])
def consultation_new(request: HttpRequest, family_id: str) -> HttpResponse:
    user = staff(request)
    family = access_family_by_id(user, family_id)
    back = reverse("family_detail", args=[family.pk])
    if family.is_erased or not may_convene(user, family):
        messages.error(request, _("Fallberatungen stellen Coaches und Leitungen des Projekts."))
        return redirect(back)
    form = ConsultationForm(request.POST or None, family=family)
    if request.method == "POST" and form.is_valid():
        try:
            consultation = actions.ask_network(
                family,
                question=form.cleaned_data["question"],
                agencies=list(form.cleaned_data["agencies"]),
                by=user,
            )
        except ActionError as error:
            form.add_error("question", str(error))
        else:
            messages.success(
                request,
                _("Gesendet als „%(alias)s“; die Stellen sind benachrichtigt.")
                % {"alias": consultation.alias},
            )
            return redirect(reverse("consultation_detail", args=[consultation.pk]))
    return render(request, "conferences/consultation_form.html", {"form": form, "family": family})


@require_GET
def consultation_detail(request: HttpRequest, consultation_id: str) -> HttpResponse:
    user = staff(request)
    reach = reach_of(user)
    consultation = access_consultation_by_id(user, consultation_id, reach)
    return _consultation_page(request, consultation, user=user, reach=reach)


def _consultation_page(
    request: HttpRequest,
    consultation: Consultation,
    *,
    user: User,
    reach: Reach,
    form: AnswerForm | None = None,
) -> HttpResponse:
    side = consultation_side(consultation, reach)
    actions.record_consultation_read(consultation, side=side, by=user)
    recipients = list(consultation.recipients.select_related("agency").order_by("agency__name"))
    mine = [r for r in recipients if r.agency_id in reach.agency_ids]
    answers = [
        (answer, answer.decrypt_field("text"))
        for answer in consultation.answers.select_related("agency", "author")
    ]
    return render(
        request,
        "conferences/consultation_detail.html",
        {
            "consultation": consultation,
            "side": side,
            "question": consultation.decrypt_field("question"),
            "answers": answers,
            "recipients": recipients,
            # A recipient sees the family's reference only once it was named to her agency.
            "named": side == PROJECT or any(r.names_family for r in mine),
            "may_name": side == PROJECT and may_convene(reach, consultation.family),
            "form": form or AnswerForm(),
        },
    )


@require_POST
def consultation_answer(request: HttpRequest, consultation_id: str) -> HttpResponse:
    user = staff(request)
    reach = reach_of(user)
    consultation = access_consultation_by_id(user, consultation_id, reach)
    form = AnswerForm(request.POST)
    if form.is_valid():
        try:
            actions.answer_consultation(consultation, text=form.cleaned_data["text"], by=user)
        except ActionError as error:
            form.add_error("text", str(error))
        else:
            messages.success(request, _("Antwort gesendet."))
            return redirect(reverse("consultation_detail", args=[consultation.pk]))
    return _consultation_page(request, consultation, user=user, reach=reach, form=form)


@require_http_methods(["GET", "POST"])
def consultation_name(request: HttpRequest, consultation_id: str, agency_id: int) -> HttpResponse:
    """Naming the family to an agency asks first (it cannot be taken back)."""
    user = staff(request)
    reach = reach_of(user)
    consultation = access_consultation_by_id(user, consultation_id, reach)
    page = reverse("consultation_detail", args=[consultation.pk])
    recipient = consultation.recipients.select_related("agency").filter(agency_id=agency_id).first()
    if recipient is None or consultation_side(consultation, reach) != PROJECT:
        raise Http404
    if request.method == "POST":
        try:
            actions.reidentify(consultation, agency=recipient.agency, by=user)
        except ActionError as error:
            messages.error(request, str(error))
        else:
            messages.success(
                request,
                _("%(agency)s sieht jetzt, um welche Familie es geht.")
                % {"agency": recipient.agency.name},
            )
        return redirect(page)
    return render(
        request,
        "conferences/consultation_name.html",
        {"consultation": consultation, "recipient": recipient},
    )


# The Strukturkonferenz report


def _report_period(request: HttpRequest) -> tuple[ReportForm, Period | None]:
    """The period the URL asks for, by default the last half year up to today."""
    today = timezone.localdate()
    initial = {"start": today - timedelta(days=182), "end": today}
    form = ReportForm(request.GET or None, initial=initial)
    if not request.GET:
        return form, Period(initial["start"], initial["end"])
    if form.is_valid():
        return form, Period(form.cleaned_data["start"], form.cleaned_data["end"])
    return form, None


@require_GET
def structure_report(request: HttpRequest) -> HttpResponse:
    user = staff(request)
    scope = require_report_scope(user)
    form, period = _report_period(request)
    report = None
    if period is not None:
        report = build_report(period, scope)
        actions.record_report_use(report, action=REPORT_VIEWED, by=user)
    return render(
        request,
        "conferences/structure_report.html",
        {
            "form": form,
            "report": report,
            "query": request.GET.urlencode(),
            # The longest bar of the trend chart (its 100 %).
            "trend_max": max(
                [v for t in (report.trends if report else []) for v in (t.now, t.before) if v]
                or [1]
            ),
            "timing_sections": [
                (_("Tage bis zur ersten Antwort, je empfangende Stelle"), report.answer_times),
                (
                    _("Tage von der Einreichung bis zur Entscheidung, je Antragsart"),
                    report.decision_times,
                ),
            ]
            if report
            else [],
        },
    )


@require_GET
def structure_report_export(request: HttpRequest, fmt: str) -> HttpResponse:
    user = staff(request)
    scope = require_report_scope(user)
    if fmt not in {"csv", "pdf"}:
        raise Http404
    _form, period = _report_period(request)
    if period is None:
        raise Http404
    report = build_report(period, scope)
    actions.record_report_use(report, action=REPORT_EXPORTED, by=user, fmt=fmt)
    name = f"strukturbericht-{period.start.isoformat()}-{period.end.isoformat()}"
    if fmt == "pdf":
        response = HttpResponse(render_report_pdf(report), content_type="application/pdf")
    else:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response.write("\ufeff")  # so that spreadsheet programs read the umlauts
        writer = csv.writer(response, delimiter=";")
        writer.writerows(csv_rows(report))
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


@require_POST
def conference_thread(request: HttpRequest, conference_id: str) -> HttpResponse:
    """Open the conference's live thread (made on first use) and go there."""
    user = staff(request)
    conference = access_conference_by_id(user, conference_id)
    try:
        thread = messaging_actions.open_subject_thread(
            THREAD_KIND, conference.pk, family=conference.family, by=user
        )
    except ActionError as error:
        messages.error(request, str(error))
        return redirect(reverse("conference_detail", args=[conference.pk]))
    return redirect(reverse("thread_detail", args=[thread.pk]))
