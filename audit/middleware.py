"""Bind each request's id and client address to the events recorded while handling it."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string

from audit import context


def _remote_addr(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


class RequestContextMiddleware:
    """A fresh request id per request (also sent back as X-Request-ID, so a user's report
    can be matched to the trail) and the client address as the platform determines it:
    settings.AUDIT_CLIENT_IP_CALLABLE, imported by name so that the trail imports nothing
    of the platform."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        name = getattr(settings, "AUDIT_CLIENT_IP_CALLABLE", None)
        self.client_ip: Callable[[HttpRequest], str | None] = (
            import_string(name) if name else _remote_addr
        )

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = uuid.uuid4().hex
        with context.bind(request_id=request_id, ip=self._ip(request)):
            response = self.get_response(request)
        response.headers.setdefault("X-Request-ID", request_id)
        return response

    def _ip(self, request: HttpRequest) -> str | None:
        address = self.client_ip(request)
        try:
            return str(ipaddress.ip_address(address or ""))
        except ValueError:
            return None
