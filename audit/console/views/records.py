"""Placeholder until the record of processing activities lands (GDPR Art. 30)."""

from django.http import Http404, HttpRequest, HttpResponse


def processing_record(request: HttpRequest) -> HttpResponse:
    raise Http404


def processing_record_json(request: HttpRequest) -> HttpResponse:
    raise Http404
