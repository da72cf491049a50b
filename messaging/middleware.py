"""The second factor on WebSockets: django-otp's middleware runs for HTTP only, so this
restores the verified device from the session the way django_otp.middleware does."""

from __future__ import annotations

import functools
from typing import Any

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
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
