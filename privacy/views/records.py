"""The record of processing activities (GDPR Art. 30) on the console: a printable page and
a JSON download, both generated from the platform's own state and both audited."""

from __future__ import annotations

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from privacy.access import record_dpo
from privacy.audit_actions import CONSOLE_PROCESSING_RECORD_VIEWED
from privacy.processing_record import build_processing_record


@require_GET
def processing_record(request: HttpRequest) -> HttpResponse:
    record = build_processing_record()
    record_dpo(request, CONSOLE_PROCESSING_RECORD_VIEWED, details={"format": "html"})
    return render(request, "console/processing_record.html", {"record": record})


@require_GET
def processing_record_json(request: HttpRequest) -> HttpResponse:
    record = build_processing_record()
    record_dpo(request, CONSOLE_PROCESSING_RECORD_VIEWED, details={"format": "json"})
    body = json.dumps(record.as_json(), cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    day = record.generated_at.date().isoformat()
    response["Content-Disposition"] = f'attachment; filename="verarbeitungsverzeichnis-{day}.json"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
