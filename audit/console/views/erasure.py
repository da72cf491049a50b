"""Placeholder until erasure lands (GDPR Art. 17)."""

from django.http import Http404, HttpRequest, HttpResponse


def erase(request: HttpRequest, reference: str) -> HttpResponse:
    raise Http404
