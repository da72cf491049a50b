"""Grants of case and dpo roles on the console: who proposed, who confirmed, when, and what
is unusual or came about past the four-eyes rule. The page view is itself recorded."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dienstweg.paging import numbered_page
from privacy.access import record_dpo
from privacy.audit_actions import CONSOLE_GRANTS_VIEWED
from privacy.grants import (
    DEVIATIONS_SHOWN,
    confirmed_grants,
    grant_rows,
    operators_with_case_roles,
    roles_without_confirmation,
)


@require_GET
def grant_list(request: HttpRequest) -> HttpResponse:
    page = numbered_page(confirmed_grants(), request, settings.AUDIT_CONSOLE_PAGE_SIZE)
    rows = grant_rows(page.object_list)
    unconfirmed_count, unconfirmed = roles_without_confirmation()
    record_dpo(
        request,
        CONSOLE_GRANTS_VIEWED,
        details={"page": page.number, "shown": len(rows)},
    )
    context = {
        "page": page,
        "rows": rows,
        "operators": operators_with_case_roles(),
        "unconfirmed": unconfirmed,
        "unconfirmed_count": unconfirmed_count,
        "shown_at_most": DEVIATIONS_SHOWN,
        "limits": {
            "grants": settings.FLAG_GRANTS_PER_DAY,
            "start": settings.WORKING_HOURS_START,
            "end": settings.WORKING_HOURS_END,
        },
    }
    return render(request, "console/grants.html", context)
