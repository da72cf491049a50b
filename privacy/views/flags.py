"""Flags of unusual access on the console: the list (open first) and one flag with its
review. Every page view and every review is itself recorded."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from dienstweg.actions import ActionError
from dienstweg.forms import PlainSelect
from dienstweg.models import Agency, User
from dienstweg.paging import numbered_page
from privacy.access import console_dpo, record_dpo
from privacy.audit_actions import CONSOLE_FLAG_VIEWED, CONSOLE_FLAGS_VIEWED
from privacy.flags import MAX_EXPORTS_PER_DAY, MAX_NOTE, open_flag_count, review_flag
from privacy.models import AccessFlag

STATUS_OPEN, STATUS_REVIEWED, STATUS_ALL = "open", "reviewed", "all"


class FlagFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=gettext_lazy("Stand"),
        required=False,
        choices=[
            (STATUS_ALL, gettext_lazy("alle (offene zuerst)")),
            (STATUS_OPEN, gettext_lazy("offen")),
            (STATUS_REVIEWED, gettext_lazy("geprüft")),
        ],
        widget=PlainSelect,
    )
    kind = forms.ChoiceField(
        label=gettext_lazy("Art"),
        required=False,
        choices=[("", gettext_lazy("alle Arten")), *AccessFlag.Kind.choices],
        widget=PlainSelect,
    )

    def flags(self) -> QuerySet[AccessFlag]:
        """The flags the checked filter asks for, open ones first, newest day first."""
        status = self.cleaned_data.get("status") or STATUS_ALL
        kind = self.cleaned_data.get("kind") or ""
        flags = AccessFlag.objects.all()
        if status == STATUS_OPEN:
            flags = flags.filter(reviewed_at__isnull=True)
        elif status == STATUS_REVIEWED:
            flags = flags.filter(reviewed_at__isnull=False)
        if kind:
            flags = flags.filter(kind=kind)
        is_open = ExpressionWrapper(Q(reviewed_at__isnull=True), output_field=BooleanField())
        return flags.order_by(is_open.desc(), "-day", "-id")


class ReviewForm(forms.Form):
    note = forms.CharField(
        label=gettext_lazy("Prüfvermerk"),
        max_length=MAX_NOTE,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=gettext_lazy(
            "Was Sie geprüft haben und mit welchem Ergebnis (z. B. Vertretung, Auftrag der "
            "Leitung, Rücksprache gehalten). Keine Daten der Familien."
        ),
        error_messages={"required": gettext_lazy("Bitte schreiben Sie einen Prüfvermerk.")},
    )


def _names(flags: list[AccessFlag]) -> tuple[dict[int, str], dict[int, str]]:
    """Names of the staff (actors and reviewers) and agencies on the page: two queries."""
    people = {f.actor_id for f in flags} | {f.reviewed_by_id for f in flags if f.reviewed_by_id}
    agencies = {f.agency_id for f in flags if f.agency_id}
    return (
        dict(User.objects.filter(pk__in=people).values_list("pk", "full_name")),
        dict(Agency.objects.filter(pk__in=agencies).values_list("pk", "name")),
    )


def _row(flag: AccessFlag, names: dict[int, str], agencies: dict[int, str]) -> dict[str, Any]:
    return {
        "flag": flag,
        "actor_name": names.get(flag.actor_id, ""),
        "agency_name": agencies.get(flag.agency_id or 0, ""),
        "reviewer_name": names.get(flag.reviewed_by_id or 0, ""),
    }


@require_GET
def flag_list(request: HttpRequest) -> HttpResponse:
    form = FlagFilterForm(request.GET)
    if not form.is_valid():
        return render(request, "console/flags.html", {"form": form}, status=400)
    page = numbered_page(form.flags(), request, settings.AUDIT_CONSOLE_PAGE_SIZE)
    names, agencies = _names(page.object_list)
    record_dpo(
        request,
        CONSOLE_FLAGS_VIEWED,
        details={
            "status": form.cleaned_data.get("status") or STATUS_ALL,
            "kind": form.cleaned_data.get("kind") or "all",
            "page": page.number,
            "shown": len(page.object_list),
        },
    )
    context = {
        "form": form,
        "page": page,
        "rows": [_row(flag, names, agencies) for flag in page.object_list],
        "open_count": open_flag_count(),
    }
    return render(request, "console/flags.html", context)


def _trail_url(flag: AccessFlag) -> str:
    """The trail search for the flag's actor on the flag's day: the events behind it."""
    day = flag.day.isoformat()
    query = urlencode({"actor": flag.actor_id, "date_from": day, "date_to": day})
    return f"{reverse('console:search')}?{query}"


@require_http_methods(["GET", "POST"])
def review(request: HttpRequest, flag_id: int) -> HttpResponse:
    dpo = console_dpo(request)
    flag = get_object_or_404(AccessFlag, pk=flag_id)
    form = ReviewForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                review_flag(flag, by=dpo, note=form.cleaned_data["note"])
            except ActionError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, _("Die Auffälligkeit ist als geprüft vermerkt."))
                return redirect("console:flags")
        flag.refresh_from_db()
        status = 400
    else:
        record_dpo(
            request,
            CONSOLE_FLAG_VIEWED,
            target=flag,
            details={"flag": flag.pk, "kind": flag.kind},
        )
    names, agencies = _names([flag])
    context = {
        **_row(flag, names, agencies),
        "form": form,
        "trail_url": _trail_url(flag),
        "limits": {
            "families": settings.FLAG_FAMILIES_PER_DAY,
            "grants": settings.FLAG_GRANTS_PER_DAY,
            "rows": settings.FLAG_EXPORT_EVENTS,
            "exports": MAX_EXPORTS_PER_DAY,
            "start": settings.WORKING_HOURS_START,
            "end": settings.WORKING_HOURS_END,
        },
    }
    return render(request, "console/flag.html", context, status=status)
