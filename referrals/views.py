"""Pages of referrals (inbox, outbox, detail, the steps, attachments)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dienstweg.access import Reach, access_family_by_id, holds_role, staff
from dienstweg.actions import ActionError
from dienstweg.compiled import planned_once
from dienstweg.models import DataCategory, Membership, User
from dienstweg.paging import KeysetPage, NumberedPage, keyset_page, numbered_page
from dienstweg.snapshot import readable_identity
from dienstweg.uploads import accepts_uploads, attachment_response
from referrals.access import (
    REFERRING_ROLES,
    access_attachment_by_id,
    access_referral_by_id,
    inbox_of,
    outbox_of,
    picked_rows,
    reach_of,
    receiving_side_is_open,
    side_of,
)
from referrals.actions import reminders, steps, transitions
from referrals.audit_actions import REFERRAL_ATTACHMENT_DOWNLOADED, REFERRAL_VIEWED
from referrals.forms import (
    AssignForm,
    AssignManyForm,
    NoteForm,
    ReferralFilterForm,
    ReferralForm,
)
from referrals.models import Referral, answer_due_order, awaiting_answer

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
                state=Referral.State.SENT, sent_at__lt=reminders.overdue_since()
            )
    return referrals, form


# The inbox's sort orders, by the `sortierung` parameter (only these: each has its index,
# referrals.models.Referral.Meta). "faellig", the default: the referrals waiting for an
# answer, the earliest due (so the overdue) first; then the rest, newest first.
INBOX_ORDERS: dict[str, tuple[Any, ...]] = {
    "faellig": (awaiting_answer(), answer_due_order(), "-sent_at", "-pk"),
    "bedarf": ("need_kind", "-sent_at", "-pk"),
}
INBOX_SORTS = [
    ("faellig", gettext_lazy("Fälligkeit")),
    ("eingang", gettext_lazy("Eingang, neueste zuerst")),
    ("bedarf", gettext_lazy("Bereich des Bedarfs")),
]


def _list(
    request: HttpRequest,
    referrals: QuerySet[Referral],
    *,
    inbox: bool,
    reach: Reach | None = None,
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    referrals, form = _filtered(
        referrals, request, agency_field="from_agency" if inbox else "to_agency"
    )
    sort = request.GET.get("sortierung", "faellig") if inbox else "eingang"
    if sort not in dict(INBOX_SORTS):
        sort = "faellig"
    page: KeysetPage | NumberedPage
    if sort in INBOX_ORDERS:
        # The rule picks the page's ids; their rows are then read by id alone.
        page = numbered_page(
            referrals.order_by(*INBOX_ORDERS[sort]),
            request,
            settings.REFERRAL_PAGE_SIZE,
            rows=_listed(picked_rows()),
        )
    else:
        # Newest first, found by keyset: a deep page of a big list reads its own rows only,
        # not every permission before it.
        page = keyset_page(
            _listed(referrals),
            request,
            field="sent_at" if inbox else "created_at",
            size=settings.REFERRAL_PAGE_SIZE,
        )
    overdue_since = reminders.overdue_since()
    answer_days = timedelta(days=settings.REFERRAL_ANSWER_DAYS)
    for referral in page.object_list:
        waiting = referral.state == Referral.State.SENT and referral.sent_at is not None
        referral.answer_due = referral.sent_at + answer_days if waiting else None
        referral.overdue = waiting and referral.sent_at < overdue_since
        # New: waiting for an answer, and nobody of the receiving agency has opened it.
        referral.new = inbox and waiting and referral.receiver_opened_at is None
    return render(
        request,
        "referrals/referral_list.html",
        {
            "page": page,
            "form": form,
            "inbox": inbox,
            "sort": sort,
            "sorts": [(key, label, _sorted_query(request, key)) for key, label in INBOX_SORTS],
            **(extra or {}),
        },
    )


def _listed(referrals: QuerySet[Referral]) -> QuerySet[Referral]:
    """What a list shows of REFERRALS: metadata only, the kind of need, never its words,
    summary or names (those are read, audited, on the referral's own page)."""
    return referrals.select_related("family", "from_agency", "to_agency", "assignee").only(
        "id",
        "state",
        "basis",
        "need_kind",
        "sent_at",
        "created_at",
        "access_ended_at",
        "receiver_opened_at",
        "dpo_review",
        "family__reference",
        "from_agency__name",
        "to_agency__name",
        "assignee__full_name",
    )


def _sorted_query(request: HttpRequest, sort: str) -> str:
    """The list's filters with another order, from its first page."""
    query = request.GET.copy()
    for name in ("nach", "vor", "page"):
        query.pop(name, None)
    query["sortierung"] = sort
    return query.urlencode()


def _led(reach: Reach) -> list[int]:
    """The agencies the user leads: she assigns their referrals, to their staff."""
    return reach.agencies_holding(Membership.Role.LEAD)


# At most this many referrals are assigned in one go (a page of the inbox is 25).
MAX_ASSIGNED_AT_ONCE = 100


@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    """Referrals received by the user's agencies; a lead assigns several at once."""
    user = staff(request)
    reach = reach_of(user)
    return _list(
        request,
        inbox_of(user, reach),
        inbox=True,
        reach=reach,
        extra={"assign_form": AssignManyForm(agency_ids=_led(reach)) if _led(reach) else None},
    )


@require_POST
def inbox_assign(request: HttpRequest) -> HttpResponse:
    """Assign the referrals ticked in the inbox (or in a lead's sections of the start page)
    to one person: each on its own, so that one refused (taken meanwhile, no longer
    visible) is reported and the others are done; then back to where they were ticked."""
    user = staff(request)
    reach = reach_of(user)
    form = AssignManyForm(request.POST, agency_ids=_led(reach))
    ticked = list(dict.fromkeys(request.POST.getlist("referral")))[:MAX_ASSIGNED_AT_ONCE]
    if not form.is_valid() or not ticked:
        messages.error(
            request,
            _("Bitte mindestens eine Vermittlung ankreuzen.")
            if form.is_valid()
            else _("Bitte eine Fachkraft der Stelle wählen."),
        )
        return redirect(_back(request))
    assignee = form.cleaned_data["assignee"]
    done, refused = 0, []
    for referral_id in ticked:
        try:
            referral = access_referral_by_id(user, referral_id)
        except Http404:
            refused.append(_("eine Vermittlung ist nicht (mehr) sichtbar"))
            continue
        try:
            steps.assign_referral(referral, assignee=assignee, by=user)
        except ActionError as error:
            steps.record_refused_step(referral, verb="assign", by=user)
            refused.append(f"{referral.family.reference}: {error}")
        else:
            done += 1
    if done:
        messages.success(
            request,
            ngettext(
                "%(n)d Vermittlung an %(name)s zugewiesen.",
                "%(n)d Vermittlungen an %(name)s zugewiesen.",
                done,
            )
            % {"n": done, "name": assignee.full_name},
        )
    for reason in refused:
        messages.error(request, _("Nicht zugewiesen: %(reason)s") % {"reason": reason})
    return redirect(_back(request))


def _back(request: HttpRequest) -> str:
    """The page the referrals were ticked on: the start page names itself in `next` (an
    address of this site only, never a way elsewhere); the inbox otherwise."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return _back_to_inbox(request)


def _back_to_inbox(request: HttpRequest) -> str:
    """The inbox as the lead left it (its order, filters and page), from the form's field."""
    # Parsed and encoded again: a query of the inbox's own path, never a way elsewhere.
    query = QueryDict(request.POST.get("zurueck", "")).urlencode()
    return reverse("referral_inbox") + (f"?{query}" if query else "")


@require_GET
def outbox(request: HttpRequest) -> HttpResponse:
    """Referrals sent by the user's agencies, with their state and outcome."""
    return _list(request, outbox_of(staff(request)), inbox=False)


# Creating


@accepts_uploads
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
            referral = steps.refer_family(family, data=form.to_data(), send=send, by=user)
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
@planned_once()
def referral_detail(request: HttpRequest, referral_id: str) -> HttpResponse:
    return _shown(request, referral_id)


def _shown(
    request: HttpRequest, referral_id: str, kept: dict[str, str] | None = None
) -> HttpResponse:
    user = staff(request)
    # One look at the user's memberships serves her side and the rules (the access check
    # reads them inside its own query).
    reach = reach_of(user)
    referral = access_referral_by_id(user, referral_id)
    side = side_of(user, referral, reach)
    steps.record_referral_read(referral, action=REFERRAL_VIEWED, side=side, by=user)
    may = {
        verb: rule.permits(user, referral, reach.roles) for verb, rule in transitions.RULES.items()
    }
    return referral_page(request, referral, side=side, may=may, kept=kept)


def referral_page(
    request: HttpRequest,
    referral: Referral,
    *,
    side: str,
    may: dict[str, bool],
    kept: dict[str, str] | None = None,
) -> HttpResponse:
    """The referral's page for a user on SIDE who may take the steps in MAY (bench/step3.py
    renders its plain twin with it). KEPT: the verb, note and refusal of a step that was
    refused, so that what was typed is still there."""
    kept = kept or {}
    note_form = NoteForm()
    if kept.get("verb") == "refuse":
        note_form = NoteForm({"note": kept["note"]})
        note_form.is_valid()
        note_form.add_error("note", kept["error"])
    snapshot = json.loads(referral.decrypt_field("snapshot") or "{}")
    # Sent: exactly what was sent. A draft: what the coach has written so far.
    notes = snapshot["notes"] if snapshot else json.loads(referral.decrypt_field("category_notes"))
    return render(
        request,
        "referrals/referral_detail.html",
        {
            "referral": referral,
            "side": side,
            "need": referral.decrypt_field("need"),
            "summary": referral.decrypt_field("summary"),
            "basis_reason": referral.decrypt_field("basis_reason"),
            "decision_note": referral.decrypt_field("decision_note"),
            "outcome": referral.decrypt_field("outcome"),
            "identity": readable_identity(snapshot.get("identity")),
            "notes": [(DataCategory(c).label, notes[c]) for c in referral.categories if c in notes],
            "events": referral.events.select_related("by"),
            "attachments": [(a, a.decrypt_field("name")) for a in referral.attachments.all()],
            "may": may,
            "assign_form": AssignForm(agency_id=referral.to_agency_id) if may["assign"] else None,
            "note_form": note_form,
            "kept": kept,
            # The step's form is gone (someone else was quicker): the text is shown to copy.
            "kept_apart": bool(kept) and not may.get(STEP_FORMS.get(kept["verb"], ""), False),
            "receiver_access": receiving_side_is_open(referral),
        },
    )


def _note(request: HttpRequest) -> str:
    form = NoteForm(request.POST)
    if form.is_valid():
        return str(form.cleaned_data["note"])
    if request.POST.get("note", "").strip():  # too long: said, never cut or dropped
        raise ActionError(" ".join(str(error) for error in form.errors["note"]))
    return ""  # the step says what it needs


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
        lambda r, by, request: steps.send_referral(r, by=by),
        gettext_lazy("Gesendet (oder, ohne Einwilligung, zur Freigabe vorgelegt)."),
    ),
    "approve": (
        lambda r, by, request: steps.approve_referral(r, by=by),
        gettext_lazy("Freigegeben und gesendet."),
    ),
    "refuse": (
        lambda r, by, request: steps.refuse_referral(r, note=_note(request), by=by),
        gettext_lazy("Freigabe verweigert."),
    ),
    "withdraw": (
        lambda r, by, request: steps.withdraw_referral(r, by=by),
        gettext_lazy("Zurückgezogen."),
    ),
    "assign": (
        lambda r, by, request: steps.assign_referral(r, assignee=_assignee(request, r), by=by),
        gettext_lazy("Zugewiesen."),
    ),
    "accept": (
        lambda r, by, request: steps.accept_referral(r, by=by),
        gettext_lazy("Angenommen."),
    ),
    "decline": (
        lambda r, by, request: steps.decline_referral(r, reason=_note(request), by=by),
        gettext_lazy("Abgelehnt."),
    ),
    "complete": (
        lambda r, by, request: steps.complete_referral(r, outcome=_note(request), by=by),
        gettext_lazy("Abgeschlossen."),
    ),
}


# Steps that carry a text the user typed (a reason, an outcome), and which step's form
# on the page holds it.
STEP_FORMS = {"refuse": "approve", "decline": "decline", "complete": "complete"}


# Steps that cannot be undone: a GET, or a POST without `confirm`, shows what the step
# will do and asks again; only the POST that carries the confirmation (any value) takes it.
CONFIRMED_STEPS = {"withdraw", "decline"}
CONFIRMATION = "ja"


@require_http_methods(["GET", "POST"])
def referral_step(request: HttpRequest, referral_id: str, verb: str) -> HttpResponse:
    """One step of the referral (the URL names it); a refused step is shown and audited."""
    if request.method == "GET" and verb not in CONFIRMED_STEPS:
        return HttpResponseNotAllowed(["POST"])
    run, done = STEPS[verb]
    user = staff(request)
    reach = reach_of(user)
    referral = access_referral_by_id(user, referral_id)
    confirmed = request.method == "POST" and bool(request.POST.get("confirm"))
    if verb in CONFIRMED_STEPS and not confirmed:
        rule = transitions.RULES[verb]
        allowed = rule.allowed(user, referral, reach.roles)
        if allowed and referral.state in rule.sources:
            return _confirmation(request, referral, verb)
        if request.method == "GET":
            messages.error(request, _("Dieser Schritt ist für Sie hier nicht möglich."))
            return redirect(reverse("referral_detail", args=[referral.pk]))
        # Not allowed now (taken meanwhile in another tab): refused, and nothing is run.
        return _refused(
            request, referral, verb, transitions.refusal(referral, verb, allowed=allowed)
        )
    try:
        run(referral, user, request)
    except ActionError as error:
        return _refused(request, referral, verb, str(error))
    messages.success(request, str(done))
    return redirect(reverse("referral_detail", args=[referral.pk]))


def _refused(request: HttpRequest, referral: Referral, verb: str, error: str) -> HttpResponse:
    steps.record_refused_step(referral, verb=verb, by=staff(request))
    if verb in STEP_FORMS:  # the page comes back with what was typed
        kept = {"verb": verb, "note": request.POST.get("note", ""), "error": error}
        return _shown(request, str(referral.pk), kept)
    messages.error(request, error)
    return redirect(reverse("referral_detail", args=[referral.pk]))


def _confirmation(request: HttpRequest, referral: Referral, verb: str) -> HttpResponse:
    """The page that asks before VERB: what it does, who loses what, and the text typed so
    far (a decline's reason) in its box. Changes nothing and records nothing."""
    return render(
        request,
        "referrals/referral_confirm.html",
        {
            "referral": referral,
            # The reference is never broken across lines, even in a heading.
            "reference": format_html(
                '<span class="reference">{}</span>', referral.family.reference
            ),
            "verb": verb,
            "note": request.POST.get("note", ""),
            "confirmation": CONFIRMATION,
            "action": reverse(f"referral_{verb}", args=[referral.pk]),
        },
    )


@require_GET
def referral_attachment(request: HttpRequest, referral_id: str, attachment_id: str) -> HttpResponse:
    user = staff(request)
    reach = reach_of(user)
    referral = access_referral_by_id(user, referral_id)
    attachment = access_attachment_by_id(user, referral, attachment_id)
    content = attachment.decrypt_field_bytes("content")
    steps.record_referral_read(
        referral,
        action=REFERRAL_ATTACHMENT_DOWNLOADED,
        side=side_of(user, referral, reach),
        by=user,
        details={"attachment": str(attachment.pk)},
    )
    return attachment_response(
        content, attachment.content_type, f"anhang-{referral.family.reference}"
    )
