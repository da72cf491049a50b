"""The trail on the console: the overview with its verification status, the search, the
exports and a verification on request. Every page view and export is itself recorded.

The search and its exports show the DPO's scope (privacy.access.console_scope); the
verification status is the whole trail's: it names no person and no family, and a seal
covers every agency's events at once."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from audit import receipt as trail_receipt
from audit import registry
from audit import verify as trail_verify
from dienstweg.access import DpoScope
from dienstweg.models import Agency, Family, User
from dienstweg.paging import keyset_page
from privacy import export as trail_export
from privacy.access import console_dpo, console_scope, record_dpo
from privacy.audit_actions import (
    CONSOLE_EXPORTED,
    CONSOLE_RECEIPT_DOWNLOADED,
    CONSOLE_SEARCHED,
    CONSOLE_VIEWED,
)
from privacy.flags import open_flag_count
from privacy.references import target_references
from privacy.search import TrailFilterForm, events_matching
from privacy.status import trail_status

PAGING_KEYS = ("nach", "vor", "page")


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    context = {
        "status": trail_status(),
        "open_flags": open_flag_count(console_scope(request)),
    }
    record_dpo(request, CONSOLE_VIEWED)
    return render(request, "console/home.html", context)


def _filter_query(request: HttpRequest) -> str:
    query = request.GET.copy()
    for key in PAGING_KEYS:
        query.pop(key, None)
    return query.urlencode()


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    scope = console_scope(request)
    form = TrailFilterForm(request.GET, scope=scope)
    if not form.is_valid():
        return render(request, "console/search.html", {"form": form}, status=400)
    trail_filter = form.trail_filter()
    page = keyset_page(
        events_matching(trail_filter, scope=scope),
        request,
        field="occurred_at",
        size=settings.AUDIT_CONSOLE_PAGE_SIZE,
    )
    events = page.object_list
    # Names of staff and agencies: two queries for the whole page.
    names = dict(
        User.objects.filter(pk__in={e.actor_id for e in events if e.actor_id}).values_list(
            "pk", "full_name"
        )
    )
    agencies = dict(
        Agency.objects.filter(pk__in={e.agency_id for e in events if e.agency_id}).values_list(
            "pk", "name"
        )
    )
    openable = _openable_families(events, scope)
    targets = target_references(events)  # references instead of UUIDs: four queries at most
    rows: list[dict[str, Any]] = [
        {
            "event": event,
            "actor_name": names.get(event.actor_id or 0, ""),
            "agency_name": agencies.get(event.agency_id or 0, ""),
            "action_label": registry.label(event.action),
            "family_link": openable is None or event.family_id in openable,
            "target": targets.get(event.id, ""),
        }
        for event in events
    ]
    record_dpo(
        request,
        CONSOLE_SEARCHED,
        family=trail_filter.family_subject(),
        details={**trail_filter.details(), "page": page.number, "shown": len(events)},
    )
    context = {
        "form": form,
        "page": page,
        "rows": rows,
        "filter_query": _filter_query(request),
    }
    return render(request, "console/search.html", context)


def _openable_families(events: list[Any], scope: DpoScope) -> set[str] | None:
    """The families on the page whose console page the DPO may open (one query; None: all
    of them, for the network's DPO). Others are named, but not linked to a page that
    would answer as if they did not exist."""
    if scope.network_wide:
        return None
    ids = {event.family_id for event in events if event.family_id}
    if not ids:
        return set()
    owned = scope.families(Family.objects.filter(pk__in=ids))
    return {str(pk) for pk in owned.values_list("pk", flat=True)}


@require_GET
def export(request: HttpRequest, fmt: str) -> HttpResponse | StreamingHttpResponse:
    if fmt not in trail_export.CONTENT_TYPES:
        raise Http404
    scope = console_scope(request)
    form = TrailFilterForm(request.GET, scope=scope)
    if not form.is_valid():
        return render(request, "console/search.html", {"form": form}, status=400)
    trail_filter = form.trail_filter()
    events = events_matching(trail_filter, scope=scope)
    # Counted first, so that the record says how much left the console (and large exports
    # are flagged for review; privacy/flags.py).
    rows = events.count()
    exported = record_dpo(
        request,
        CONSOLE_EXPORTED,
        family=trail_filter.family_subject(),
        details={**trail_filter.details(), "format": fmt, "rows": rows},
    )
    # The export's own record is not part of it: the file holds what was counted.
    events = events.exclude(pk=exported.pk)
    form_of = trail_export.Format(fmt)
    content = (
        trail_export.lines_async(events, form_of)
        if isinstance(request, ASGIRequest)
        else trail_export.lines(events, form_of)
    )
    response = StreamingHttpResponse(content, content_type=trail_export.CONTENT_TYPES[fmt])
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="protokoll-{stamp}.{fmt}"'
    return response


@require_GET
def receipt(request: HttpRequest) -> HttpResponse:
    """The signed Prüfquittung of the trail's current head, as a file to keep."""
    try:
        issued = trail_receipt.issue()
    except trail_receipt.ReceiptError as exc:
        messages.error(request, str(exc))
        return redirect("console:home")
    if issued is None:
        messages.error(request, _("Noch kein Siegel: Es gibt nichts zu quittieren."))
        return redirect("console:home")
    record_dpo(
        request,
        CONSOLE_RECEIPT_DOWNLOADED,
        target=("audit.auditseal", issued["seal"]),
        details={"seal": issued["seal"]},
    )
    response = HttpResponse(
        trail_receipt.dumps(issued), content_type="application/json; charset=utf-8"
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    name = f"pruefquittung-siegel-{issued['seal']}-{stamp}.json"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_POST
def verify_now(request: HttpRequest) -> HttpResponse:
    dpo = console_dpo(request)
    report = trail_verify.verify()
    trail_verify.record_result(report, by=dpo)
    if report.ok:
        messages.success(request, report.summary())
    else:
        messages.error(request, report.summary())
    return redirect("console:home")
