"""Placeholder until the flags of unusual access land."""

from django.http import Http404, HttpRequest, HttpResponse


def flag_list(request: HttpRequest) -> HttpResponse:
    raise Http404


def review(request: HttpRequest, flag_id: int) -> HttpResponse:
    raise Http404
