"""Helpers that sign staff in through the real pages: password, then second factor."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone

from dienstweg.models import AuthenticatorDevice, BackupCodeDevice, User
from dienstweg.views import REAUTHENTICATED
from tests.conftest import PASSWORD, current_code

LOGIN_URL = "/anmelden/"
ENROL_URL = "/zweiter-faktor/einrichten/"
VERIFY_URL = "/zweiter-faktor/"
LOGOUT_URL = "/abmelden/"
ACCOUNT_URL = "/konto/"
END_SESSION_URL = "/konto/sitzung-beenden/"
RENEW_CODES_URL = "/konto/backup-codes/"
REAUTH_URL = "/konto/anmeldung-bestaetigen/"
RENEW_FACTOR_URL = "/konto/zweiter-faktor/"

WRONG_LOGIN = "E-Mail-Adresse oder Passwort ist falsch."
WRONG_CODE = "Der Code stimmt nicht oder wurde schon verwendet."
THROTTLED = "Zu viele falsche Codes."
BACKUP_CODE = re.compile(r"<code>([2-9A-Z]{5}-[2-9A-Z]{5})</code>")


def password_login(
    client: Client, email: str, password: str = PASSWORD, **extra: Any
) -> HttpResponse:
    return client.post(LOGIN_URL, {"username": email, "password": password}, **extra)


def submit_code(client: Client, token: str, url: str = VERIFY_URL) -> HttpResponse:
    return client.post(url, {"token": token})


def sign_in(user: User, token: str, **client_defaults: Any) -> Client:
    """A new browser that logged in with password and then the given code."""
    client = Client(**client_defaults)
    response = password_login(client, user.email)
    assert response.status_code == 302, response.content
    assert response["Location"].startswith(VERIFY_URL)
    response = submit_code(client, token)
    assert response.status_code == 302, response.content.decode()
    return client


def next_code(device: AuthenticatorDevice) -> str:
    """A code the device has not accepted yet: enrolment used the current time step."""
    return current_code(device, offset_steps=1)


def wrong_code(device: AuthenticatorDevice) -> str:
    """Six digits that no time step near now accepts."""
    near = {current_code(device, offset_steps=step) for step in range(-3, 4)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in near)


def let_throttle_pass(device: AuthenticatorDevice | BackupCodeDevice) -> None:
    """Wait out django-otp's back-off without sleeping: date the last failure back."""
    type(device).objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=timezone.now() - timedelta(hours=1)
    )


def is_verified_in(client: Client) -> bool:
    """Whether this browser reaches a page behind the second factor."""
    return client.get("/").status_code == 200


def session_key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def redirects_to_login(response: HttpResponse) -> bool:
    return response.status_code == 302 and response["Location"].startswith(LOGIN_URL)


def confirm_login(client: Client, token: str, password: str = PASSWORD) -> HttpResponse:
    """Confirm the signed-in session's login with password and code (re-authentication)."""
    return client.post(REAUTH_URL, {"password": password, "token": token})


def login_confirmed_at(client: Client, when: datetime) -> None:
    """Date this session's last confirmed login to WHEN, without waiting for the clock."""
    session = client.session
    session[REAUTHENTICATED] = when.timestamp()
    session.save()
