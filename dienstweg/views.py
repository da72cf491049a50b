"""Pages of the platform core: login and second factor, sessions, home, directory."""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import login as otp_login

from dienstweg import (
    actions,
    clock,
    family_history,
    family_search,
    hooks,
    notifications,
    security,
    sessions,
    worklist,
)
from dienstweg.access import (
    REGISTERING_ROLES,
    Role,
    access_agency_by_id,
    access_consent_by_id,
    access_family_by_id,
    access_proposal_by_id,
    access_team_member_by_id,
    active_sessions_of,
    agencies_registering_for,
    directory_visible_to,
    enrolment_link_by_token,
    families_visible_to,
    holds_role,
    may_edit_family,
    may_reset_second_factor,
    reach_from,
    reach_of,
    staff,
    team_visible_to,
)
from dienstweg.audit_actions import (
    CONSENT_EVIDENCE_VIEWED,
    CONSENT_VIEWED,
    FAMILY_HISTORY_VIEWED,
    FAMILY_VIEWED,
)
from dienstweg.compiled import planned_once
from dienstweg.forms import (
    ConsentForm,
    DirectorySearchForm,
    EnrolmentForm,
    FamilyEditForm,
    FamilyForm,
    FamilySearchForm,
    FirstCodeForm,
    LoginForm,
    MemberEditFormSet,
    MemberFormSet,
    NewPasswordForm,
    ReauthenticationForm,
    ResetSecondFactorForm,
    RevokeConsentForm,
    TokenForm,
)
from dienstweg.middleware import before_second_factor
from dienstweg.models import (
    AuthenticatorDevice,
    Consent,
    EnrolmentLink,
    Family,
    HouseholdMember,
    Notification,
)
from dienstweg.paging import numbered_page
from dienstweg.security import PasswordAttempt, client_ip
from dienstweg.uploads import accepts_uploads


def next_url(request: HttpRequest) -> str:
    """Where to go after login and verification: a local address only."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("home")


def with_next(name: str, request: HttpRequest) -> str:
    return f"{reverse(name)}?{urlencode({'next': next_url(request)})}"


def session_handle(session_key: str) -> str:
    """A public handle for a session: the key itself is a credential and never shown."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:20]


def finish_second_factor(request: HttpRequest, device: Any) -> None:
    otp_login(request, device)
    # A new session key once the session is verified, as at login (session fixation).
    request.session.cycle_key()


# Session keys of the account pages: the authenticator a browser is setting up (its secret is
# shown to that browser only), and when the login was last confirmed with password and code.
LINK_DEVICE = "_dienstweg_link_device"
RENEWAL_DEVICE = "_dienstweg_renewal_device"
REAUTHENTICATED = "_dienstweg_reauthenticated"


def authenticator_context(device: AuthenticatorDevice) -> dict[str, Any]:
    """What the page shows to set up an authenticator app: QR code and the secret in groups."""
    secret = device.secret_base32
    return {
        "qr_svg": segno.make(device.config_url, error="m").svg_inline(
            scale=5, dark="#000", light="#fff", title=_("QR-Code für die Authenticator-App")
        ),
        "secret_groups": [secret[i : i + 4] for i in range(0, len(secret), 4)],
    }


def reauthenticated_at(request: HttpRequest) -> datetime | None:
    """When this session last confirmed its login with password and code."""
    value = request.session.get(REAUTHENTICATED)
    return datetime.fromtimestamp(value, tz=UTC) if isinstance(value, int | float) else None


# Login and second factor


class LoginView(auth_views.LoginView):
    """Password step. Every attempt is counted for its pair of login name and address before
    the password is checked (dienstweg/security.py); a waiting pair's password is not checked
    at all, and its answer is the same for known and unknown login names."""

    template_name = "dienstweg/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = False
    attempt: PasswordAttempt

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.attempt = security.count_password_attempt(request)
        if self.attempt.refused_until is not None:
            actions.record_failed_login(str(request.POST.get("username", "")))
            return locked_out(request, until=self.attempt.refused_until)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        security.forgive_pair(self.attempt)
        if not actions.has_second_factor(form.get_user()):
            # The password alone never leads to enrolment (it may be one someone else chose):
            # no session, only the hint to use the enrolment link.
            actions.record_login_not_enrolled(form.get_user())
            return HttpResponseRedirect(reverse("enrol"))
        # Nothing of an earlier session carries over, least of all its verified second
        # factor: Django keeps the session data when the same user logs in again.
        self.request.session.flush()
        super().form_valid(form)  # logs in; Django issues a new session key
        now = clock.now()
        session = self.request.session
        session[sessions.STARTED] = now
        session[sessions.SEEN] = now
        session[sessions.IP] = client_ip(self.request)
        session[sessions.USER_AGENT] = self.request.headers.get("User-Agent", "")[:200]
        actions.record_login(form.get_user())
        return HttpResponseRedirect(with_next("verify", self.request))

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        actions.record_failed_login(str(self.request.POST.get("username", "")))
        if self.attempt.locks_until is not None:
            return locked_out(self.request, until=self.attempt.locks_until)
        return super().form_invalid(form)


login_view = before_second_factor(LoginView.as_view())


@before_second_factor
def enrol(request: HttpRequest) -> HttpResponse:
    """Where an account without a second factor lands: it is set up only through the
    person's enrolment link, never after a password login. A session of such an account
    (from before links) is ended."""
    user: Any = request.user
    if user.is_authenticated and (user.is_verified() or actions.has_second_factor(user)):
        return HttpResponseRedirect(with_next("verify", request))
    if user.is_authenticated:
        logout(request)
    return render(request, "dienstweg/not_enrolled.html")


@before_second_factor
@require_http_methods(["GET", "POST"])
def enrolment_link(request: HttpRequest, token: str) -> HttpResponse:
    """The single-use enrolment link: she chooses her password (or, after a reset, confirms
    the one she has), sets up her authenticator app and is signed in."""
    link = enrolment_link_by_token(token)
    if link is None:
        return invalid_link(request)
    user = link.user
    device = actions.pending_authenticator(user, device_id=request.session.get(LINK_DEVICE))
    request.session[LINK_DEVICE] = device.pk
    chooses_password = link.purpose == EnrolmentLink.Purpose.ENROL
    form = EnrolmentForm(request.POST or None, user=user, chooses_password=chooses_password)
    if request.method == "POST" and form.is_valid():
        try:
            codes = actions.enrol_by_link(
                link, device=device, password=form.password, token=form.cleaned_data["token"]
            )
        except actions.InvalidLink:
            return invalid_link(request)
        except actions.EnrolmentRefused as error:
            field = error.field if error.field in form.fields else None
            form.add_error(field, str(error))
        else:
            user.refresh_from_db()  # her new password: the session's hash is derived from it
            sign_in_enrolled(request, user, device)
            return render(
                request, "dienstweg/backup_codes.html", {"codes": codes, "next": reverse("home")}
            )
    context = {
        "form": form,
        "link": link,
        "email": user.email,
        "chooses_password": chooses_password,
        **authenticator_context(device),
    }
    return render(request, "dienstweg/enrolment_link.html", context)


def invalid_link(request: HttpRequest) -> HttpResponse:
    """One answer for an unknown, used, replaced or expired link; it changes nothing."""
    return render(
        request,
        "dienstweg/invalid_link.html",
        {"message": actions.INVALID_LINK, "hours": settings.ENROLMENT_LINK_HOURS},
        status=404,
    )


def sign_in_enrolled(request: HttpRequest, user: Any, device: AuthenticatorDevice) -> None:
    """Sign her in, verified by the authenticator she has just confirmed (as a login with
    password and code would: a fresh session, its start and address recorded)."""
    request.session.flush()
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    now = clock.now()
    session = request.session
    session[sessions.STARTED] = now
    session[sessions.SEEN] = now
    session[sessions.IP] = client_ip(request)
    session[sessions.USER_AGENT] = request.headers.get("User-Agent", "")[:200]
    actions.record_login(user)
    finish_second_factor(request, device)


@before_second_factor
def verify(request: HttpRequest) -> HttpResponse:
    """Every login: enter a code from the authenticator app or a backup code."""
    user: Any = request.user
    if not user.is_authenticated:
        return redirect(reverse("login"))
    if user.is_verified():
        return HttpResponseRedirect(next_url(request))
    if not AuthenticatorDevice.objects.filter(user=user, confirmed=True).exists():
        return HttpResponseRedirect(with_next("enrol", request))
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = actions.verify_second_factor(user, token=form.cleaned_data["token"])
        if result.device is not None:
            finish_second_factor(request, result.device)
            actions.record_second_factor_passed(user, device=result.device)
            return HttpResponseRedirect(next_url(request))
        actions.record_second_factor_failed(user, throttled=result.throttled)
        if result.throttled:
            form.add_error("token", str(actions.THROTTLED_MESSAGE))
        else:
            form.add_error("token", _("Der Code stimmt nicht oder wurde schon verwendet."))
    return render(request, "dienstweg/verify.html", {"form": form, "next": next_url(request)})


@before_second_factor
@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        actions.record_logout(staff(request), session_key=request.session.session_key)
    logout(request)
    response = redirect(reverse("login"))
    # Also drop whatever the browser kept of this session (cache, storage, cookies).
    response["Clear-Site-Data"] = '"cache", "cookies", "storage"'
    return response


@before_second_factor
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """For the load balancer: the process answers and reaches its database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


# Pages behind the second factor


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The start page: what is waiting for the user, section by section as the apps register
    them (dienstweg/worklist.py), each row one click from its action."""
    user = staff(request)
    memberships = list(user.memberships.select_related("agency"))
    reach = reach_from(memberships)
    is_lead = any(membership.role == Role.LEAD for membership in memberships)
    return render(
        request,
        "dienstweg/home.html",
        {
            "memberships": memberships,
            "queue": worklist.work_queue(user, reach),
            "is_lead": is_lead,
            "counted_up_to": worklist.COUNTED_UP_TO,
        },
    )


@require_POST
def proposal_confirm(request: HttpRequest, proposal_id: int) -> HttpResponse:
    """A lead confirms a proposed role in her agency: it takes effect now."""
    user = staff(request)
    proposal = access_proposal_by_id(user, proposal_id)
    try:
        actions.confirm_proposal(proposal, by=user)
    except actions.ActionError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            _("Bestätigt: %(name)s ist jetzt %(role)s in %(agency)s.")
            % {
                "name": proposal.user.full_name,
                "role": proposal.get_role_display(),
                "agency": proposal.agency.name,
            },
        )
    return redirect(reverse("home"))


@require_POST
def proposal_refuse(request: HttpRequest, proposal_id: int) -> HttpResponse:
    """A lead refuses a proposed role in her agency: nothing is granted."""
    user = staff(request)
    proposal = access_proposal_by_id(user, proposal_id)
    try:
        actions.refuse_proposal(proposal, by=user)
    except actions.ActionError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            _("Abgelehnt: %(name)s erhält die Rolle %(role)s in %(agency)s nicht.")
            % {
                "name": proposal.user.full_name,
                "role": proposal.get_role_display(),
                "agency": proposal.agency.name,
            },
        )
    return redirect(reverse("home"))


@require_GET
def account(request: HttpRequest) -> HttpResponse:
    """The user's own security page: active sessions, backup codes."""
    current = request.session.session_key or ""
    rows = [
        {
            "handle": session_handle(s.session_key),
            "current": s.session_key == current,
            "session": s,
        }
        for s in active_sessions_of(staff(request))[:50]
    ]
    fresh_until = None
    confirmed = reauthenticated_at(request)
    if confirmed is not None:
        until = confirmed + timedelta(minutes=settings.REAUTHENTICATION_MINUTES)
        fresh_until = until if until > timezone.now() else None
    return render(request, "dienstweg/account.html", {"sessions": rows, "fresh_until": fresh_until})


@require_POST
def end_session(request: HttpRequest) -> HttpResponse:
    current = request.session.session_key or ""
    handle = request.POST.get("session", "")
    if handle == "others":
        count = actions.end_other_sessions(staff(request), current_session_key=current)
        ended = ngettext(
            "%(count)d andere Sitzung beendet.", "%(count)d andere Sitzungen beendet.", count
        )
        messages.success(request, ended % {"count": count})
        return redirect(reverse("account"))
    for staff_session in active_sessions_of(staff(request)):
        if session_handle(staff_session.session_key) == handle:
            if staff_session.session_key == current:
                break
            actions.end_session(staff(request), session_key=staff_session.session_key)
            messages.success(request, _("Die Sitzung wurde beendet."))
            return redirect(reverse("account"))
    messages.error(
        request,
        _(
            "Diese Sitzung gibt es nicht (mehr). Zum Beenden der aktuellen "
            "Sitzung melden Sie sich ab."
        ),
    )
    return redirect(reverse("account"))


def ask_for_fresh_login(request: HttpRequest, then: str) -> HttpResponse:
    messages.info(
        request,
        _("Bitte bestätigen Sie zuerst Ihre Anmeldung mit Passwort und aktuellem Code."),
    )
    return HttpResponseRedirect(f"{reverse('reauthenticate')}?{urlencode({'next': then})}")


@require_http_methods(["GET", "POST"])
def reauthenticate(request: HttpRequest) -> HttpResponse:
    """Confirm the login with password and a current code, before changing one's backup
    codes or second factor: a session left open, or stolen, is not enough for that."""
    user = staff(request)
    form = ReauthenticationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # Counted like a login's password, for the pair of her account and this address: a
        # stolen session cannot guess her password here faster than at the login.
        attempt = security.count_password_attempt(request, name=user.email)
        if attempt.refused_until is not None:
            actions.record_reauthentication_failed(user, step="password", throttled=True)
            return locked_out(request, until=attempt.refused_until)
        if not user.check_password(form.cleaned_data["password"]):
            actions.record_reauthentication_failed(user, step="password")
            if attempt.locks_until is not None:
                return locked_out(request, until=attempt.locks_until)
            form.add_error("password", _("Das Passwort stimmt nicht."))
        else:
            security.forgive_pair(attempt)
            result = actions.verify_second_factor(user, token=form.cleaned_data["token"])
            if result.device is None:
                actions.record_reauthentication_failed(
                    user, step="second_factor", throttled=result.throttled
                )
                form.add_error(
                    "token",
                    str(actions.THROTTLED_MESSAGE)
                    if result.throttled
                    else _("Der Code stimmt nicht oder wurde schon verwendet."),
                )
            else:
                request.session[REAUTHENTICATED] = timezone.now().timestamp()
                actions.record_reauthenticated(user)
                target = request.POST.get("next") or request.GET.get("next")
                return HttpResponseRedirect(next_url(request) if target else reverse("account"))
    context = {
        "form": form,
        "next": next_url(request) if request.GET.get("next") else reverse("account"),
        "minutes": settings.REAUTHENTICATION_MINUTES,
    }
    return render(request, "dienstweg/reauthenticate.html", context)


@require_POST
def renew_backup_codes(request: HttpRequest) -> HttpResponse:
    user = staff(request)
    try:
        codes = actions.renew_backup_codes(
            user, by=user, reauthenticated_at=reauthenticated_at(request)
        )
    except actions.FreshLoginRequired:
        return ask_for_fresh_login(request, reverse("account"))
    return render(
        request, "dienstweg/backup_codes.html", {"codes": codes, "next": reverse("account")}
    )


@require_http_methods(["GET", "POST"])
def renew_second_factor(request: HttpRequest) -> HttpResponse:
    """Set up a new authenticator app (a new phone) while the old one still works; after a
    fresh login. The new one replaces the old once its first code is confirmed."""
    user = staff(request)
    when = reauthenticated_at(request)
    try:
        device = actions.start_second_factor_renewal(
            user, by=user, reauthenticated_at=when, device_id=request.session.get(RENEWAL_DEVICE)
        )
    except actions.FreshLoginRequired:
        return ask_for_fresh_login(request, reverse("renew_second_factor"))
    request.session[RENEWAL_DEVICE] = device.pk
    form = FirstCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = actions.renew_second_factor(
                device,
                token=form.cleaned_data["token"],
                by=user,
                reauthenticated_at=when,
                current_session_key=request.session.session_key or "",
            )
        except actions.FreshLoginRequired:
            return ask_for_fresh_login(request, reverse("renew_second_factor"))
        except actions.ActionError as error:
            form.add_error("token", str(error))
        else:
            request.session.pop(RENEWAL_DEVICE, None)
            finish_second_factor(request, device)  # the session now rests on the new device
            return render(
                request,
                "dienstweg/backup_codes.html",
                {"codes": codes, "next": reverse("account")},
            )
    return render(
        request,
        "dienstweg/renew_second_factor.html",
        {"form": form, **authenticator_context(device)},
    )


@require_http_methods(["GET", "POST"])
def change_password(request: HttpRequest) -> HttpResponse:
    """Choose a new password oneself, after a fresh login."""
    user = staff(request)
    when = reauthenticated_at(request)
    try:
        actions.check_fresh_login(when)
    except actions.FreshLoginRequired:
        return ask_for_fresh_login(request, reverse("change_password"))
    form = NewPasswordForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            actions.change_password(
                user,
                password=form.cleaned_data["new_password1"],
                by=user,
                reauthenticated_at=when,
                current_session_key=request.session.session_key or "",
            )
        except actions.FreshLoginRequired:
            return ask_for_fresh_login(request, reverse("change_password"))
        except actions.ActionError as error:
            form.add_error("new_password1", str(error))
        else:
            update_session_auth_hash(request, user)  # this session stays signed in
            messages.success(
                request, _("Ihr Passwort ist geändert; Ihre anderen Sitzungen sind beendet.")
            )
            return redirect(reverse("account"))
    return render(request, "dienstweg/change_password.html", {"form": form})


# Team: a lead looks after her agency's members' access


@require_GET
def team(request: HttpRequest) -> HttpResponse:
    """The members of the agencies the user leads, whether each has set up her access, and
    a way to reset a lost second factor."""
    user = staff(request)
    if not holds_role(user, Role.LEAD):
        raise PermissionDenied(_("Diese Seite ist für Leitungen einer Einrichtung."))
    page = numbered_page(team_visible_to(user), request, settings.TEAM_PAGE_SIZE, counted=True)
    for membership in page:
        member = membership.user
        membership.resettable = (
            member.pk != user.pk
            and member.is_active
            and not (member.is_staff or member.is_superuser)
        )
    return render(request, "dienstweg/team.html", {"page": page})


@require_http_methods(["GET", "POST"])
def team_reset(request: HttpRequest, user_id: int) -> HttpResponse:
    """Confirm, then reset a team member's second factor: a new enrolment link goes to her."""
    user = staff(request)
    member = access_team_member_by_id(user, user_id)
    if not may_reset_second_factor(user, member):
        raise PermissionDenied(
            _("Ihren eigenen zweiten Faktor setzt eine zweite Person zurück.")
            if member.pk == user.pk
            else _("Den zweiten Faktor dieses Kontos setzt nur die Administration zurück.")
        )
    form = ResetSecondFactorForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.reset_second_factor(
                member, by=user, reset_password=form.cleaned_data["reset_password"]
            )
        except actions.ActionError as error:
            messages.error(request, str(error))
        else:
            messages.success(
                request,
                _(
                    "Der zweite Faktor von %(name)s ist zurückgesetzt, alle Sitzungen des "
                    "Kontos sind beendet. Ein neuer Einrichtungslink ist an die hinterlegte "
                    "E-Mail-Adresse unterwegs."
                )
                % {"name": member.full_name},
            )
        return redirect(reverse("team"))
    return render(
        request,
        "dienstweg/team_reset.html",
        {"member": member, "form": form, "hours": settings.ENROLMENT_LINK_HOURS},
    )


# Directory


@require_GET
def directory(request: HttpRequest) -> HttpResponse:
    form = DirectorySearchForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        agencies = directory_visible_to(staff(request)).none()
    else:
        agencies = directory_visible_to(staff(request), form.to_filter())
    page = numbered_page(agencies, request, settings.DIRECTORY_PAGE_SIZE, counted=True)
    return render(request, "dienstweg/directory.html", {"form": form, "page": page})


@require_GET
def agency_detail(request: HttpRequest, agency_id: int) -> HttpResponse:
    user = staff(request)
    agency = access_agency_by_id(user, agency_id)
    # Colleagues with an account, for a direct message (names and roles only).
    colleagues = (
        agency.memberships.filter(user__is_active=True)
        .exclude(user=user)
        .select_related("user")
        .order_by("user__full_name")[:100]
    )
    return render(
        request,
        "dienstweg/agency_detail.html",
        {"agency": agency, "colleagues": colleagues, "colleague_actions": hooks.colleague_actions},
    )


def locked_out(request: HttpRequest, *, until: datetime) -> HttpResponse:
    """After too many wrong passwords of a pair: when to try again, the same page for every
    login name, whether its account exists or not."""
    actions.record_lockout()
    seconds = max(1, math.ceil((until - timezone.now()).total_seconds()))
    # The clock time shown is the next full minute: trying at the minute shown must work.
    shown = until.replace(second=0, microsecond=0)
    if shown < until:
        shown += timedelta(minutes=1)
    response = render(
        request,
        "dienstweg/locked_out.html",
        {"minutes": math.ceil(seconds / 60), "until": shown},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response


# Families and consent


@require_http_methods(["GET", "POST"])
def family_list(request: HttpRequest) -> HttpResponse:
    """The user's families with their names (only the owning project's members see the
    list at all), newest first, or those matching a search by part of a name, a reference
    or a birth date, sent by POST: names must not end up in URLs, access logs or history.
    Every family shown, names and all, is recorded in the trail."""
    user = staff(request)
    reach = reach_of(user)
    families = (
        families_visible_to(user, reach)
        .select_related("owner", "data_key")
        .only(
            "id", "reference", "registered_at", "erased_at", "owner_id", "owner__name",
            "data_key_id", "data_key__master_version", "data_key__wrapped",
        )
        .order_by("-registered_at", "-pk")
    )  # fmt: skip
    search = FamilySearchForm(request.POST if request.method == "POST" else None)
    number = None
    if search.is_bound:
        if search.is_valid():
            families = family_search.matching(families, search.terms, owner_ids=reach.agency_ids)
            number = search.cleaned_data["page"]
        else:
            families = families.none()
    page = numbered_page(families, request, settings.FAMILY_PAGE_SIZE, counted=True, number=number)
    _add_households(page.object_list)
    if not search.is_bound or search.is_valid():
        actions.record_families_shown(
            page.object_list,
            by=user,
            searched=search.is_bound,
            found=page.total or 0,
            page=page.number,
        )
    return render(
        request,
        "dienstweg/family_list.html",
        {
            "page": page,
            "search": search,
            "searched": search.is_bound and search.is_valid(),
            "can_register": agencies_registering_for(user).exists(),
        },
    )


def _add_households(families: list[Any]) -> None:
    """Give each family of a list page its household, in one query for the page: NAME (the
    first person's), OTHERS (the other first names, with the surname where it differs),
    ADULTS and CHILDREN. Counting in the list query would group every family of the
    project before the page is cut (slow at 100k families)."""
    by_id = {family.pk: family for family in families}
    for family in families:
        family.people = []
    members = HouseholdMember.objects.filter(family__in=list(by_id)).only(
        "id", "family_id", "kind", "position", "first_name_enc", "last_name_enc"
    )
    for member in members:  # ordered by position
        family = by_id[member.family_id]
        member.family = family  # its data key, without a query per member
        family.people.append(member)
    for family in families:
        people = family.people
        family.adults = sum(1 for m in people if m.kind == HouseholdMember.Kind.ADULT)
        family.children = len(people) - family.adults
        if family.erased_at is not None or family.data_key_id is None or not people:
            family.name, family.others = "", ""
            continue
        names = [(m.decrypt_field("first_name"), m.decrypt_field("last_name")) for m in people]
        (first_name, surname), *rest = names
        family.name = f"{first_name} {surname}"
        family.others = ", ".join(
            first if last == surname else f"{first} {last}" for first, last in rest
        )


def family_register(request: HttpRequest) -> HttpResponse:
    user = staff(request)
    owners = agencies_registering_for(user)
    if not owners.exists():
        raise PermissionDenied(_("Familien legen Coaches und Leitungen eines Projekts an."))
    data = MemberFormSet.with_added_row(request.POST or None, "members")
    form = FamilyForm(data, owners=owners)
    members = MemberFormSet(data, prefix="members")
    duplicates: list[str] = []
    if data is not None and MemberFormSet.ADD in data:
        form.drafting = members.drafting = True  # one more row, and no errors yet
    elif request.method == "POST" and form.is_valid() and members.is_valid():
        member_data = [f.to_data() for f in members.forms if f.has_changed()]
        duplicates = [family.reference for family in actions.find_duplicates(member_data, by=user)]
        if duplicates and not form.cleaned_data["confirm_duplicate"]:
            form.add_error(
                "confirm_duplicate",
                _(
                    "Eine Person mit diesem Namen und Geburtsdatum ist schon erfasst. Bitte "
                    "prüfen Sie die genannte Familie oder bestätigen Sie die Neuanlage."
                ),
            )
        else:
            try:
                family = actions.register_family(
                    owner=form.cleaned_data["owner"],
                    members=member_data,
                    address=form.cleaned_data["address"],
                    phone=form.cleaned_data["phone"],
                    notes=form.cleaned_data["notes"],
                    by=user,
                )
            except actions.ActionError as error:
                form.add_error(None, str(error))
            else:
                messages.success(
                    request, _("Familie %(ref)s angelegt.") % {"ref": family.reference}
                )
                return redirect(reverse("family_detail", args=[family.pk]))
    return render(
        request,
        "dienstweg/family_form.html",
        {"form": form, "members": members, "duplicates": duplicates},
    )


@require_http_methods(["GET", "POST"])
def family_edit(request: HttpRequest, family_id: str) -> HttpResponse:
    """Change the family's contact data and household: any number of people added (one
    more row per "weitere Person hinzufügen"), changed or removed, in one action."""
    user = staff(request)
    family = access_family_by_id(user, family_id)
    if not may_edit_family(user, family):
        raise PermissionDenied(_("Familien ändern Coaches und Leitungen des Projekts."))
    if family.is_erased:
        messages.error(request, _("Die Daten dieser Familie sind gelöscht."))
        return redirect(reverse("family_detail", args=[family.pk]))
    rows = list(family.members.all())
    data = MemberEditFormSet.with_added_row(request.POST or None, "members")
    form = FamilyEditForm(
        data,
        initial={
            "address": family.decrypt_field("address"),
            "phone": family.decrypt_field("phone"),
            "notes": family.decrypt_field("notes"),
            "version": actions.family_version(family),
        },
    )
    members = MemberEditFormSet(
        data,
        prefix="members",
        initial=[
            {
                "id": str(m.pk),
                "kind": m.kind,
                "first_name": m.decrypt_field("first_name"),
                "last_name": m.decrypt_field("last_name"),
                "birth_date": m.birth_date,
            }
            for m in rows
        ],
    )
    if data is not None and MemberEditFormSet.ADD in data:
        form.drafting = members.drafting = True  # one more row, and no errors yet
    elif request.method == "POST" and form.is_valid() and members.is_valid():
        changed, added, removed = {}, [], []
        for row in members.forms:
            pk = row.cleaned_data.get("id")
            if pk and row.cleaned_data.get("DELETE"):
                removed.append(pk)
            elif pk:
                changed[pk] = row.to_data()  # change_family writes only what differs
            elif row.has_changed():
                added.append(row.to_data())
        try:
            changes = actions.change_family(
                family,
                by=user,
                address=form.cleaned_data["address"],
                phone=form.cleaned_data["phone"],
                notes=form.cleaned_data["notes"],
                changed_members=changed,
                added_members=added,
                removed_members=removed,
                seen_version=form.cleaned_data["version"],
            )
        except actions.ActionError as error:
            form.add_error(None, str(error))
        else:
            if changes:
                messages.success(request, _("Änderungen gespeichert."))
            else:
                messages.info(request, _("Nichts geändert."))
            return redirect(reverse("family_detail", args=[family.pk]))
    actions.record_family_read(family, by=user, action=FAMILY_VIEWED)
    return render(
        request, "dienstweg/family_edit.html", {"family": family, "form": form, "members": members}
    )


@require_GET
def family_history_page(request: HttpRequest, family_id: str) -> HttpResponse:
    """Who registered and changed the family's record, when, and which fields: for the
    owning project, page by page."""
    user = staff(request)
    family = access_family_by_id(user, family_id)
    page = numbered_page(
        family_history.history_of(family), request, settings.FAMILY_HISTORY_PAGE_SIZE
    )
    actions.record_family_read(family, by=user, action=FAMILY_HISTORY_VIEWED)
    return render(
        request,
        "dienstweg/family_history.html",
        {"family": family, "page": page, "changes": family_history.describe(page.object_list)},
    )


@require_GET
@planned_once()
def family_detail(request: HttpRequest, family_id: str) -> HttpResponse:
    return _family_page(request, family_id)


# The family page shows the newest changes; the history page has them all.
RECENT_CHANGES = 5


def _family_page(
    request: HttpRequest, family_id: str, kept: dict[str, str] | None = None
) -> HttpResponse:
    """The family's record; KEPT: the consent, note and refusal of a revocation that was
    refused, so that the note typed is still there."""
    user = staff(request)
    reach = reach_of(user)  # once for the record and every app's section
    family = access_family_by_id(user, family_id, reach)
    if family.is_erased:  # a tombstone: nothing of the family is left to show (Art. 17)
        return render(request, "dienstweg/family_detail.html", {"family": family})
    members = list(family.members.all())
    consents = (
        family.consents.select_related(
            "given_by", "on_behalf_of", "recorded_by", "revoked_by", "evidence"
        )
        .prefetch_related("recipients")
        .order_by("-recorded_at")
    )
    actions.record_family_read(family, by=user, action=FAMILY_VIEWED)
    recent = list(family_history.history_of(family)[: RECENT_CHANGES + 1])
    # What the apps above the core add: the referrals sent, the applications tagged.
    sections = [
        render_to_string(section.template, section.context(family, user, reach))
        for section in hooks.family_sections
    ]
    return render(
        request,
        "dienstweg/family_detail.html",
        {
            "family": family,
            "members": [
                {"member": m, "name": m.display_name, "birth_date": m.birth_date} for m in members
            ],
            "address": family.decrypt_field("address"),
            "phone": family.decrypt_field("phone"),
            "notes": family.decrypt_field("notes"),
            "consents": consents,
            "revoke_form": RevokeConsentForm(),
            "kept": kept or {},
            "sections": sections,
            "can_edit": reach.holds(family.owner_id, REGISTERING_ROLES),
            "changes": family_history.describe(recent[:RECENT_CHANGES]),
            "more_changes": len(recent) > RECENT_CHANGES,
        },
    )


@accepts_uploads
def consent_new(request: HttpRequest, family_id: str) -> HttpResponse:
    user = staff(request)
    family = access_family_by_id(user, family_id)
    if family.is_erased:
        messages.error(request, _("Die Daten dieser Familie sind gelöscht."))
        return redirect(reverse("family_detail", args=[family.pk]))
    form = ConsentForm(request.POST or None, request.FILES or None, family=family)
    if request.method == "POST" and form.is_valid():
        try:
            actions.grant_consent(family, data=form.to_data(), by=user)
        except actions.ActionError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Einwilligung erfasst."))
            return redirect(reverse("family_detail", args=[family.pk]))
    return render(request, "dienstweg/consent_form.html", {"form": form, "family": family})


# A revocation cannot be undone: a GET, or a POST without `confirm`, shows whom it cuts off
# and asks again; only the POST that carries the confirmation (any value) revokes.
CONFIRMATION = "ja"


@require_http_methods(["GET", "POST"])
def consent_revoke(request: HttpRequest, family_id: str, consent_id: str) -> HttpResponse:
    user = staff(request)
    family = access_family_by_id(user, family_id)
    consent = access_consent_by_id(user, family, consent_id)
    if family.is_erased:
        messages.error(request, _("Die Daten dieser Familie sind gelöscht."))
        return redirect(reverse("family_detail", args=[family.pk]))
    note = request.POST.get("note", "")
    if request.method == "GET" or not request.POST.get("confirm"):
        if consent.revoked_at is not None:
            messages.error(request, _("Diese Einwilligung ist bereits widerrufen."))
            return redirect(reverse("family_detail", args=[family.pk]))
        return _revocation_confirmation(request, family, consent, note)
    form = RevokeConsentForm(request.POST)
    refusal = _("Der Vermerk ist zu lang (höchstens %(n)d Zeichen).") % {
        "n": RevokeConsentForm.base_fields["note"].max_length  # type: ignore[attr-defined]
    }
    if form.is_valid():
        try:
            actions.revoke_consent(consent, note=form.cleaned_data["note"], by=user)
        except actions.ActionError as error:
            refusal = str(error)
        else:
            messages.success(request, _("Die Einwilligung ist widerrufen."))
            return redirect(reverse("family_detail", args=[family.pk]))
    # Refused: the record comes back with the note as typed and the reason beside it.
    return _family_page(
        request, family_id, {"consent": str(consent.pk), "note": note, "error": refusal}
    )


def _revocation_confirmation(
    request: HttpRequest, family: Family, consent: Consent, note: str
) -> HttpResponse:
    """The page that asks before a revocation: the agencies the consent covers, and what
    each app would withdraw (the referrals, application tags and threads whose receiving
    agency or processing office loses its access), with the note typed so far. Changes
    nothing; records that the consent was read."""
    user = staff(request)
    losses = hooks.losses_of(consent)
    actions.record_family_read(
        family, by=user, action=FAMILY_VIEWED, details={"consent": str(consent.pk)}
    )
    return render(
        request,
        "dienstweg/consent_revoke.html",
        {
            "family": family,
            # The reference is never broken across lines, even in a heading.
            "reference": format_html('<span class="reference">{}</span>', family.reference),
            "consent": consent,
            "recipients": list(consent.recipients.order_by("name")),
            "losses": losses,
            "note": note,
            "confirmation": CONFIRMATION,
        },
    )


@require_GET
def consent_detail(request: HttpRequest, family_id: str, consent_id: str) -> HttpResponse:
    """One consent read back in full: who gave it, in which capacity, for which child, the
    witness and revocation notes. Decrypting them is a read of the family's data: audited."""
    user = staff(request)
    family = access_family_by_id(user, family_id)
    if family.is_erased:
        raise Http404
    consent = access_consent_by_id(user, family, consent_id)
    # The people named are the family's own rows: decrypted with the key already loaded.
    for person in (consent.given_by, consent.on_behalf_of):
        if person is not None:
            person.family = family
    actions.record_family_read(
        family, by=user, action=CONSENT_VIEWED, details={"consent": str(consent.pk)}
    )
    return render(
        request,
        "dienstweg/consent_detail.html",
        {
            "family": family,
            "consent": consent,
            "given_by": consent.given_by.display_name,
            "on_behalf_of": consent.on_behalf_of.display_name if consent.on_behalf_of else "",
            "witness_note": consent.decrypt_field("witness_note"),
            "revocation_note": consent.decrypt_field("revocation_note"),
        },
    )


@require_GET
def consent_evidence(request: HttpRequest, family_id: str, consent_id: str) -> HttpResponse:
    user = staff(request)
    family = access_family_by_id(user, family_id)
    consent = access_consent_by_id(user, family, consent_id)
    if consent.evidence is None:
        raise Http404
    content = consent.evidence.decrypt_field_bytes("content")
    actions.record_family_read(
        family, by=user, action=CONSENT_EVIDENCE_VIEWED, details={"consent": str(consent.pk)}
    )
    response = HttpResponse(content, content_type=consent.evidence.content_type)
    extension = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}.get(
        consent.evidence.content_type, "bin"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="einwilligung-{family.reference}.{extension}"'
    )
    return response


# Notifications


@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    """The user's own notifications, newest first; unread ones are marked."""
    items = Notification.objects.filter(user=staff(request)).order_by("-created_at", "-pk")
    page = numbered_page(items, request, settings.NOTIFICATION_PAGE_SIZE, counted=True)
    return render(request, "dienstweg/notifications.html", {"page": page})


@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    count = notifications.mark_read(staff(request), ids=None)
    if count:
        messages.success(request, _("Alle Benachrichtigungen sind als gelesen markiert."))
    return redirect(reverse("notifications"))
