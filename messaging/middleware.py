"""The WebSocket's gates: the exact Origin (SameOriginValidator), and the second factor:
django-otp's middleware runs for HTTP only, so OTPWebSocketMiddleware restores the
verified device from the session the way django_otp.middleware does."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.middleware import is_verified
from django_otp.models import Device


@database_sync_to_async
def _verified_device(session: Any, user: Any) -> Device | None:
    persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    device = Device.from_persistent_id(persistent_id) if persistent_id else None
    if device is not None and device.user_id == user.pk and device.confirmed:
        return device
    return None


class OTPWebSocketMiddleware(BaseMiddleware):
    """After channels.auth.AuthMiddlewareStack: scope["user"].is_verified() as on HTTP."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        user = scope["user"]
        if hasattr(user, "_wrapped"):  # the lazy user of AuthMiddleware, resolved by now
            user = user._wrapped
        user.otp_device = (
            await _verified_device(scope["session"], user) if user.is_authenticated else None
        )
        user.is_verified = functools.partial(is_verified, user)
        scope["user"] = user
        return await super().__call__(scope, receive, send)


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of URL with the scheme's default port filled in; None if it is
    not an http(s) origin."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def allowed_origins() -> set[tuple[str, str, int]]:
    """The site's own origin (DIENSTWEG_BASE_URL) and DIENSTWEG_CSRF_TRUSTED_ORIGINS: each
    exactly, scheme, host and port (a wildcard host of CSRF_TRUSTED_ORIGINS is ignored)."""
    urls = [settings.DIENSTWEG_BASE_URL, *settings.CSRF_TRUSTED_ORIGINS]
    origins = {_origin(url) for url in urls if "*" not in url}
    return {origin for origin in origins if origin is not None}


class SameOriginValidator:
    """Refuses (closes before accept) a WebSocket whose Origin is not exactly one of the
    site's origins: Channels' AllowedHostsOriginValidator compares the host only, so a page
    on another port or scheme of the same host would be let in."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket":
            headers = dict(scope.get("headers") or [])
            origin = _origin(headers.get(b"origin", b"").decode("latin-1"))
            if origin is None or origin not in allowed_origins():
                return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
