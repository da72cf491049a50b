"""The trail: overview with verification status, search, export. (Being written.)"""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from audit.console.access import require_dpo


def home(request: HttpRequest) -> HttpResponse:
    require_dpo(request)
    return render(request, "console/base.html")


def search(request: HttpRequest) -> HttpResponse:
    raise Http404


def export(request: HttpRequest, fmt: str) -> HttpResponse:
    raise Http404


def verify_now(request: HttpRequest) -> HttpResponse:
    raise Http404
