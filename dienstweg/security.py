"""Who is asking: the client address behind trusted proxies, the login name for lockouts."""

from __future__ import annotations

import ipaddress
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.http import HttpRequest

from dienstweg.models import normalize_email


def _is_trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(
        ip in ipaddress.ip_network(proxy, strict=False) for proxy in settings.TRUSTED_PROXIES
    )


def client_ip(request: HttpRequest) -> str:
    """The client's address. X-Forwarded-For counts only when a configured proxy sent it,
    and only up to the first hop that is not one of ours, so a forged header changes nothing."""
    return client_address(
        request.META.get("REMOTE_ADDR") or "", request.META.get("HTTP_X_FORWARDED_FOR", "")
    )


def client_address(remote: str, forwarded: str) -> str:
    """client_ip() from the peer's address and the X-Forwarded-For header (also for sockets)."""
    remote = remote or "0.0.0.0"  # noqa: S104 (a value, not a bind)
    if not _is_trusted(remote):
        return remote
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote
    return remote


def login_name(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """The login name as axes counts it: case and spaces must not dodge the lockout."""
    name = (credentials or {}).get("username") or request.POST.get("username") or ""
    return normalize_email(str(name))


class LockoutHandler(AxesDatabaseHandler):
    """Axes' database handler, except that a successful login clears only the failures of
    that account from that address, whatever AXES_LOCKOUT_PARAMETERS say. Clearing every
    failure from the address would let anyone with one valid password log in between
    guesses and wipe the failures on a colleague's account tried from there; clearing the
    account's failures everywhere would let her own login wipe a guesser's count elsewhere."""

    def reset_user_attempts(
        self, request: HttpRequest, credentials: dict[str, Any] | None = None
    ) -> int:
        username = get_client_username(request, credentials)
        deleted, _details = AccessAttempt.objects.filter(
            username=username,
            ip_address=client_ip(request),  # as AXES_CLIENT_IP_CALLABLE
        ).delete()
        return deleted
