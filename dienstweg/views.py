"""Pages of the platform core: login and second factor, sessions, home, directory."""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import login as otp_login

from dienstweg import actions, hooks, notifications, security, sessions
from dienstweg.access import (
    access_agency_by_id,
    access_consent_by_id,
    access_family_by_id,
    access_proposal_by_id,
    active_sessions_of,
    agencies_registering_for,
    directory_visible_to,
    families_visible_to,
    proposal_deadline,
    proposals_awaiting,
    reach_of,
    staff,
)
from dienstweg.audit_actions import CONSENT_EVIDENCE_VIEWED, FAMILY_VIEWED
from dienstweg.forms import (
    ConsentForm,
    DirectorySearchForm,
    FamilyForm,
    FamilySearchForm,
    LoginForm,
    MemberFormSet,
    RevokeConsentForm,
    TokenForm,
)
from dienstweg.middleware import before_second_factor
from dienstweg.models import AuthenticatorDevice, HouseholdMember, Notification
from dienstweg.paging import numbered_page
from dienstweg.security import PasswordAttempt, client_ip


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
        # Nothing of an earlier session carries over, least of all its verified second
        # factor: Django keeps the session data when the same user logs in again.
        self.request.session.flush()
        super().form_valid(form)  # logs in; Django issues a new session key
        now = time.time()
        session = self.request.session
        session[sessions.STARTED] = now
        session[sessions.SEEN] = now
        session[sessions.IP] = client_ip(self.request)
        session[sessions.USER_AGENT] = self.request.headers.get("User-Agent", "")[:200]
        user = form.get_user()
        actions.record_login(user)
        has_device = AuthenticatorDevice.objects.filter(user=user, confirmed=True).exists()
        return HttpResponseRedirect(with_next("verify" if has_device else "enrol", self.request))

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        actions.record_failed_login(str(self.request.POST.get("username", "")))
        if self.attempt.locks_until is not None:
            return locked_out(self.request, until=self.attempt.locks_until)
        return super().form_invalid(form)


login_view = before_second_factor(LoginView.as_view())


@before_second_factor
def enrol(request: HttpRequest) -> HttpResponse:
    """First login: set up the authenticator app, confirm one code, receive backup codes."""
    user: Any = request.user
    if not user.is_authenticated:
        return redirect(reverse("login"))
    if user.is_verified() or AuthenticatorDevice.objects.filter(user=user, confirmed=True).exists():
        return HttpResponseRedirect(with_next("verify", request))
    device = actions.start_totp_enrolment(user)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = actions.confirm_totp_enrolment(device, token=form.cleaned_data["token"])
        except actions.ActionError as error:
            actions.record_second_factor_failed(user, throttled=False)
            form.add_error("token", str(error))
        else:
            finish_second_factor(request, device)
            return render(
                request, "dienstweg/backup_codes.html", {"codes": codes, "next": next_url(request)}
            )
    secret = device.secret_base32
    context = {
        "form": form,
        "qr_svg": segno.make(device.config_url, error="m").svg_inline(
            scale=5, dark="#000", light="#fff", title=_("QR-Code für die Authenticator-App")
        ),
        "secret_groups": [secret[i : i + 4] for i in range(0, len(secret), 4)],
        "next": next_url(request),
    }
    return render(request, "dienstweg/enrol.html", context)


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
    user = staff(request)
    memberships = user.memberships.select_related("agency")
    # A lead's queue: proposed roles in her agencies, waiting for her as the second person.
    proposals = [
        {"proposal": proposal, "until": proposal_deadline(proposal)}
        for proposal in proposals_awaiting(user)[:50]
    ]
    return render(
        request, "dienstweg/home.html", {"memberships": memberships, "proposals": proposals}
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
    return render(request, "dienstweg/account.html", {"sessions": rows})


@require_POST
def end_session(request: HttpRequest) -> HttpResponse:
    current = request.session.session_key or ""
    handle = request.POST.get("session", "")
    if handle == "others":
        count = actions.end_other_sessions(staff(request), current_session_key=current)
        messages.success(request, _("%(count)d andere Sitzung(en) beendet.") % {"count": count})
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


@require_POST
def renew_backup_codes(request: HttpRequest) -> HttpResponse:
    codes = actions.issue_backup_codes(staff(request))
    return render(
        request, "dienstweg/backup_codes.html", {"codes": codes, "next": reverse("account")}
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
    """The user's families by reference: no names on the list, so opening a family
    (which is audited) is the only way to read them. Exact search through the blind index,
    sent by POST: names and birth dates must not end up in URLs, access logs or history."""
    user = staff(request)
    families = (
        families_visible_to(user)
        .select_related("owner")
        .only("id", "reference", "registered_at", "erased_at", "owner__name")  # not encrypted
        .order_by("-registered_at", "-pk")
    )
    search = FamilySearchForm(request.POST if request.method == "POST" else None)
    if search.is_bound:
        if search.is_valid():
            data = search.cleaned_data
            index = actions.identity_index(
                data["first_name"], data["last_name"], data["birth_date"]
            )
            families = families.filter(
                Exists(HouseholdMember.objects.filter(family=OuterRef("pk"), identity_index=index))
            )
        else:
            families = families.none()
    page = numbered_page(families, request, settings.FAMILY_PAGE_SIZE, counted=True)
    # Household sizes for this page only, in one query: counting in the list query would
    # group every family of the project before the page is cut (slow at 100k families).
    sizes = Counter(
        (family_id, kind)
        for family_id, kind in HouseholdMember.objects.filter(
            family__in=[family.pk for family in page.object_list]
        ).values_list("family_id", "kind")
    )
    for family in page.object_list:
        family.adults = sizes[(family.pk, HouseholdMember.Kind.ADULT)]
        family.children = sizes[(family.pk, HouseholdMember.Kind.CHILD)]
    return render(
        request,
        "dienstweg/family_list.html",
        {
            "page": page,
            "search": search,
            "can_register": agencies_registering_for(user).exists(),
        },
    )


def family_register(request: HttpRequest) -> HttpResponse:
    user = staff(request)
    owners = agencies_registering_for(user)
    if not owners.exists():
        raise PermissionDenied(_("Familien legen Coaches und Leitungen eines Projekts an."))
    form = FamilyForm(request.POST or None, owners=owners)
    members = MemberFormSet(request.POST or None, prefix="members")
    duplicates: list[str] = []
    if request.method == "POST" and form.is_valid() and members.is_valid():
        member_data = [f.to_data() for f in members.forms if f.has_changed()]
        indexes = [
            actions.identity_index(m.first_name, m.last_name, m.birth_date) for m in member_data
        ]
        duplicates = list(
            families_visible_to(user)
            .filter(members__identity_index__in=indexes)
            .values_list("reference", flat=True)
            .distinct()
        )
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


@require_GET
def family_detail(request: HttpRequest, family_id: str) -> HttpResponse:
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
            "sections": sections,
        },
    )


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


@require_POST
def consent_revoke(request: HttpRequest, family_id: str, consent_id: str) -> HttpResponse:
    user = staff(request)
    family = access_family_by_id(user, family_id)
    consent = access_consent_by_id(user, family, consent_id)
    if family.is_erased:
        messages.error(request, _("Die Daten dieser Familie sind gelöscht."))
        return redirect(reverse("family_detail", args=[family.pk]))
    form = RevokeConsentForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Der Vermerk ist zu lang."))
    else:
        try:
            actions.revoke_consent(consent, note=form.cleaned_data["note"], by=user)
        except actions.ActionError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("Die Einwilligung ist widerrufen."))
    return redirect(reverse("family_detail", args=[family.pk]))


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
