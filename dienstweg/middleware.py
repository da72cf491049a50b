"""Request gates that apply to every page: language, session lifetime, the mandatory
second factor, and the security headers every response carries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import translation
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from dienstweg import clock, sessions
from dienstweg.models import AuthenticatorDevice

View = TypeVar("View", bound=Callable[..., Any])


def before_second_factor(view: View) -> View:
    """Mark a view as reachable without a verified second factor (login, enrolment,
    verification, health). Everything else is closed until the session is verified."""
    view.before_second_factor = True  # type: ignore[attr-defined]
    return view


def chosen_language(cookies: Mapping[str, str]) -> str:
    """The language the person chose (its cookie), else German; the browser's language does
    not decide. For pages (LanguageMiddleware) and sockets alike."""
    chosen = cookies.get(settings.LANGUAGE_COOKIE_NAME)
    return chosen if chosen in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


class LanguageMiddleware:
    """German unless the person chose English; the browser's language does not decide."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        language = chosen_language(request.COOKIES)
        translation.activate(language)
        request.LANGUAGE_CODE = language
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        return response


class SessionLifetimeMiddleware:
    """End a login session after idle time and after its absolute lifetime."""

    # Write the last-seen time at most once a minute, not on every request.
    TOUCH_INTERVAL = 60

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = request.session
        if "_auth_user_id" in session:
            now = clock.now()
            if sessions.STARTED not in session:  # logged in by other means than our login page
                session[sessions.STARTED] = session[sessions.SEEN] = now
            started = session[sessions.STARTED]
            seen = session.get(sessions.SEEN, started)
            if sessions.lifetime_over(started=started, seen=seen, now=now):
                logout(request)
                messages.info(request, _("Ihre Sitzung ist abgelaufen. Bitte melden Sie sich an."))
                return redirect_to_login(request.get_full_path())
            if now - seen > self.TOUCH_INTERVAL:
                session[sessions.SEEN] = now
        return self.get_response(request)


class SecondFactorRequiredMiddleware:
    """Every page needs a login verified by the second factor, unless marked otherwise."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], *args: Any
    ) -> HttpResponse | None:
        if getattr(view_func, "before_second_factor", False):
            return None
        user: Any = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if user.is_verified():
            return None
        has_device = AuthenticatorDevice.objects.filter(user=user, confirmed=True).exists()
        target = reverse("verify" if has_device else "enrol")
        return HttpResponseRedirect(f"{target}?{urlencode({'next': request.get_full_path()})}")


class SecurityHeadersMiddleware:
    """Nothing of ours is cached by browsers or proxies; a strict CSP on every page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response["Cache-Control"] = "no-store"
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"
        )
        return response
