"""Placeholder until restriction of processing lands (GDPR Art. 18)."""

from django.http import Http404, HttpRequest, HttpResponse


def restrict(request: HttpRequest, reference: str) -> HttpResponse:
    raise Http404


def lift(request: HttpRequest, reference: str) -> HttpResponse:
    raise Http404
