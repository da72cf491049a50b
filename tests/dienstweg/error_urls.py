"""The platform's URLs plus one view that fails: the 500 page's test needs a real error."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as platform


def broken(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("kaputt: Kaya Yılmaz")  # details an error page must never show


urlpatterns = [path("kaputt/", broken), *platform]
