"""Placeholder until the data-subject pages land (access report, GDPR Art. 15)."""

from django.http import Http404, HttpRequest, HttpResponse


def lookup(request: HttpRequest) -> HttpResponse:
    raise Http404


def detail(request: HttpRequest, reference: str) -> HttpResponse:
    raise Http404


def access_report(request: HttpRequest, reference: str) -> HttpResponse:
    raise Http404


def access_report_download(request: HttpRequest, reference: str, fmt: str) -> HttpResponse:
    raise Http404
