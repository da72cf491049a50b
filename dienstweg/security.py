"""Who is asking: the client address behind trusted proxies; and how often a pair of login
name and address has guessed wrong (the login throttle, see LoginThrottle)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac

from dienstweg.models import LoginThrottle, normalize_email


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


def login_name(request: HttpRequest) -> str:
    """The login name as the throttle counts it: case and spaces must not dodge it."""
    return normalize_email(str(request.POST.get("username") or ""))


# The login throttle. Wrong passwords count per pair of login name and client address, never
# per account or per address alone (OWASP ASVS 5.0 V6.3, NIST SP 800-63B 5.2.2): a colleague
# behind the same office address still logs in, and nobody can lock a known colleague out at
# her own desk from elsewhere. Unknown login names count exactly like known ones, so neither
# the answer nor its timing tells whether an account exists.


def client_network(address: str) -> str:
    """The address as the throttle counts it. An IPv6 client usually holds a whole /64 and
    could take a fresh address for every guess, so the /64 counts as one address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def pair_key(name: str, address: str) -> str:
    """The pair's keyed hash: without the secret key, a row does not tell whose it is."""
    pair = f"{normalize_email(name)}\n{client_network(address)}"
    return salted_hmac("dienstweg.security.pair_key", pair, algorithm="sha256").hexdigest()


def lock_delay(failures: int) -> timedelta | None:
    """How long a pair waits after its FAILURES-th wrong password in a row: not at all below
    LOGIN_LOCKOUT_FAILURES, then LOGIN_LOCKOUT_FIRST_DELAY, doubling with every further
    failure up to LOGIN_LOCKOUT_MAX_DELAY."""
    beyond = failures - settings.LOGIN_LOCKOUT_FAILURES
    if beyond < 0:
        return None
    first: timedelta = settings.LOGIN_LOCKOUT_FIRST_DELAY
    longest: timedelta = settings.LOGIN_LOCKOUT_MAX_DELAY
    # The exponent is bounded so that the product stays a valid timedelta.
    return min(first * 2 ** min(beyond, 40), longest)


@dataclass(frozen=True)
class PasswordAttempt:
    """One password attempt of a pair, already counted as a failure: a correct password
    forgives it (forgive_pair), anything else leaves it counted."""

    key: str
    # The pair was waiting when the attempt came: its password must not be checked at all.
    refused_until: datetime | None = None
    # Should this attempt fail, the pair waits until then.
    locks_until: datetime | None = None


def count_password_attempt(
    request: HttpRequest, *, name: str | None = None, now: datetime | None = None
) -> PasswordAttempt:
    """Count a password attempt of the request's pair BEFORE its password is checked, or
    refuse it while the pair waits. Counting first, under the pair's row lock, means that
    parallel guesses are counted one after the other and none slips past a lock that another
    one is just setting; a correct password then takes its count back (forgive_pair). NAME
    is the login name when the form has none (a signed-in person confirming her password)."""
    now = now or timezone.now()
    key = pair_key(login_name(request) if name is None else name, client_ip(request))
    with transaction.atomic():
        # Two first attempts of a new pair: the second insert waits for the first and
        # get_or_create then reads (and locks) the committed row.
        throttle, created = LoginThrottle.objects.select_for_update().get_or_create(
            key=key, defaults={"last_failure_at": now}
        )
        if throttle.locked_until is not None and throttle.locked_until > now:
            return PasswordAttempt(key, refused_until=throttle.locked_until)
        if now - throttle.last_failure_at >= settings.LOGIN_LOCKOUT_FORGET_AFTER:
            throttle.failures = 0  # quiet long enough: earlier failures are forgotten
        throttle.failures += 1
        throttle.last_failure_at = now
        delay = lock_delay(throttle.failures)
        throttle.locked_until = now + delay if delay is not None else None
        throttle.save(update_fields=["failures", "last_failure_at", "locked_until"])
        if created:
            forget_quiet_pairs(now=now)
    return PasswordAttempt(key, locks_until=throttle.locked_until)


def forgive_pair(attempt: PasswordAttempt) -> None:
    """The password was right: the pair starts afresh. Only this pair: a guesser's own
    login must not wipe her failures on a colleague's account, nor the colleague's login
    at her desk a guesser's failures elsewhere."""
    LoginThrottle.objects.filter(key=attempt.key).delete()


def forget_quiet_pairs(*, now: datetime | None = None, batch: int = 100) -> int:
    """Remove pairs that have been quiet for LOGIN_LOCKOUT_FORGET_AFTER and do not wait: what
    a correct password never forgave (typos, unknown names, given-up guessers) is not kept.
    Rows another attempt holds are skipped, so this never waits for a lock."""
    now = now or timezone.now()
    with transaction.atomic():
        quiet = list(
            LoginThrottle.objects.select_for_update(skip_locked=True)
            .filter(last_failure_at__lte=now - settings.LOGIN_LOCKOUT_FORGET_AFTER)
            .exclude(locked_until__gt=now)
            .order_by("last_failure_at")
            .values_list("pk", flat=True)[:batch]
        )
        if not quiet:
            return 0
        deleted, _details = LoginThrottle.objects.filter(pk__in=quiet).delete()
    return deleted
