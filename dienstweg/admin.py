"""Admin pages: agencies, memberships, role proposals, accounts and the directory. Holds no
case content.

Saving goes through dienstweg.actions wherever a rule is involved (groups, sessions, admin
rights, roles, accounts and their enrolment links); each form asks the action's own check
first, so a refusal shows as a German error on the form and nothing is saved."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, ngettext_lazy

from dienstweg import actions
from dienstweg.access import FOUR_EYES_ROLES, needs_second_admin, proposal_deadline
from dienstweg.models import (
    Agency,
    AuthenticatorDevice,
    Checked,
    Consent,
    Contact,
    Location,
    Membership,
    MembershipProposal,
    Service,
    User,
    normalize_email,
)


def acting(request: HttpRequest) -> User:
    """The admin at work: behind OTPAdminSite, a verified member of staff."""
    return request.user  # type: ignore[return-value]


class ActorForm(ModelForm):
    """A form that knows who submits it, so that it can ask the action's check (set by
    the ModelAdmin's get_form)."""

    actor: User | None = None


def with_actor(form_class: type[ModelForm], request: HttpRequest) -> type[ModelForm]:
    return type(form_class.__name__, (form_class,), {"actor": acting(request)})


class StaffCreationForm(ModelForm):
    """Name and e-mail only: the person chooses her password herself, through her link."""

    class Meta:
        model = User
        fields = ("email", "full_name")

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])


class StaffChangeForm(ModelForm):
    """No password field: nobody sets or sees another person's password."""

    actor: User | None = None  # set by StaffAdmin.get_form

    class Meta:
        model = User
        fields = ("email", "full_name", "is_active", "is_staff", "is_superuser")

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if {"is_staff", "is_superuser"} & set(self.changed_data):
            # self.instance still holds the saved values here (Django copies the form's
            # values into it only after clean()).
            try:
                actions.check_admin_rights(
                    self.instance,
                    staff=bool(cleaned.get("is_staff")),
                    superuser=bool(cleaned.get("is_superuser")),
                    by=self.actor,
                )
            except actions.ActionError as error:
                field = "is_superuser" if "is_superuser" in self.changed_data else "is_staff"
                self.add_error(field, str(error))
        return cleaned


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ("agency", "role", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # memberships are added on their own page, through the actions


@admin.register(User)
class StaffAdmin(DjangoUserAdmin):
    form = StaffChangeForm
    add_form = StaffCreationForm
    # Django's user add page carries the password fields' script; ours has none.
    add_form_template = None
    ordering = ("full_name",)
    list_display = ("full_name", "email", "is_active", "is_staff", "enrolled", "last_login")
    list_filter = ("is_active", "is_staff", "memberships__agency")
    search_fields = ("full_name", "email")
    readonly_fields = ("access_state", "last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("email", "full_name", "access_state")}),
        (_("Status"), {"fields": ("is_active", "is_staff", "is_superuser")}),
        (_("Daten"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "fields": ("email", "full_name"),
                "description": _(
                    "Die Person bekommt einen Einrichtungslink an diese E-Mail-Adresse. Damit "
                    "legt sie ihr Passwort selbst fest und richtet ihren zweiten Faktor ein."
                ),
            },
        ),
    )
    filter_horizontal = ()
    inlines = [MembershipInline]
    actions = [
        "end_all_sessions",
        "reset_second_factor",
        "reset_password_and_second_factor",
        "send_enrolment_link",
        "deactivate",
    ]

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[Any]:
        return [] if obj is None else list(self.inlines)  # nothing to list on the add page

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A consent names who recorded and revoked it and is never changed (the database
        # refuses, dienstweg migration 0010): such an account is deactivated, not deleted.
        if (
            obj is not None
            and Consent.objects.filter(Q(recorded_by=obj) | Q(revoked_by=obj)).exists()
        ):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # Deleting in bulk would not ask has_delete_permission for each account.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        devices = AuthenticatorDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
        return super().get_queryset(request).annotate(has_factor=Exists(devices))

    @admin.display(description=_("Zugang eingerichtet"), boolean=True, ordering="has_factor")
    def enrolled(self, obj: User) -> bool:
        return bool(getattr(obj, "has_factor", False))

    @admin.display(description=_("Zugang"))
    def access_state(self, obj: User) -> str:
        if obj.pk is None:
            return "–"
        if actions.has_second_factor(obj):
            return str(_("eingerichtet (Passwort und zweiter Faktor)"))
        link = obj.enrolment_links.order_by("-created_at", "-pk").first()
        if link is not None and link.is_open(timezone.now()):
            until = date_format(timezone.localtime(link.expires_at), "SHORT_DATETIME_FORMAT")
            return str(_("noch nicht eingerichtet; Einrichtungslink gültig bis %(until)s")) % {
                "until": until
            }
        return str(
            _("noch nicht eingerichtet, kein gültiger Link (Aktion „Einrichtungslink senden“)")
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        # Once she has a password of her own or a second factor, her address stays: a new
        # address would redirect her next link (after a reset) into someone else's mailbox.
        if obj is not None and (obj.has_usable_password() or actions.has_second_factor(obj)):
            fields += ("email",)
        return fields

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> Any:
        raise PermissionDenied(_("Passwörter legt jede Person selbst fest, über ihren Link."))

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return with_actor(form, request) if hasattr(form, "actor") else form

    def save_model(self, request: HttpRequest, obj: User, form: ModelForm, change: bool) -> None:
        by = acting(request)
        if not change:
            issued = actions.create_account(obj.email, full_name=obj.full_name, by=by)
            obj.pk, obj.password = issued.link.user.pk, issued.link.user.password
            obj._state.adding = False
            self.message_user(request, link_sent_message(issued))
            return
        deactivating = "is_active" in form.changed_data and not obj.is_active
        rights = bool({"is_staff", "is_superuser"} & set(form.changed_data))
        staff, superuser = obj.is_staff, obj.is_superuser
        if rights:  # admin rights change only through their action (checked, audited)
            obj.is_staff = bool(form.initial.get("is_staff"))
            obj.is_superuser = bool(form.initial.get("is_superuser"))
        super().save_model(request, obj, form, change)
        if rights:
            actions.set_admin_rights(obj, staff=staff, superuser=superuser, by=by)
        if deactivating:
            actions.deactivate_staff(obj, by=by)
        elif "email" in form.changed_data:
            # A corrected address before she has set up her access: the link goes there.
            self.message_user(request, link_sent_message(actions.send_enrolment_link(obj, by=by)))

    def _for_each(
        self, request: HttpRequest, queryset: QuerySet[User], act: Any, done: Any
    ) -> None:
        """Run ACT on each selected account; tell what was done and what was refused."""
        count = 0
        for user in queryset:
            try:
                act(user)
            except actions.ActionError as error:
                self.message_user(request, f"{user}: {error}", messages.ERROR)
            else:
                count += 1
        if count:
            self.message_user(request, done(count), messages.SUCCESS)

    @admin.action(description=_("Alle Sitzungen beenden"))
    def end_all_sessions(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        ended = sum(actions.end_all_sessions(user, by=request.user) for user in queryset)  # type: ignore[arg-type,misc]
        self.message_user(
            request,
            ngettext("%(count)d Sitzung beendet.", "%(count)d Sitzungen beendet.", ended)
            % {"count": ended},
        )

    @admin.action(description=_("Deaktivieren (beendet alle Sitzungen)"))
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            actions.deactivate_staff(user, by=request.user)  # type: ignore[arg-type]
        self.message_user(request, _("Konten deaktiviert."))

    @admin.action(description=_("Zweiten Faktor zurücksetzen (neuer Einrichtungslink)"))
    def reset_second_factor(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        by: Any = request.user
        self._for_each(
            request,
            queryset,
            lambda user: actions.reset_second_factor(user, by=by),
            lambda count: (
                ngettext(
                    "Zweiter Faktor zurückgesetzt, Sitzungen beendet, Einrichtungslink gesendet.",
                    "%(count)d zweite Faktoren zurückgesetzt, Sitzungen beendet, Einrichtungslinks "
                    "gesendet.",
                    count,
                )
                % {"count": count}
            ),
        )

    @admin.action(description=_("Passwort und zweiten Faktor zurücksetzen (Passwort vergessen)"))
    def reset_password_and_second_factor(
        self, request: HttpRequest, queryset: QuerySet[User]
    ) -> None:
        by: Any = request.user
        self._for_each(
            request,
            queryset,
            lambda user: actions.reset_second_factor(user, by=by, reset_password=True),
            lambda count: (
                ngettext(
                    "Passwort und zweiter Faktor zurückgesetzt, Einrichtungslink gesendet.",
                    "%(count)d Zugänge zurückgesetzt, Einrichtungslinks gesendet.",
                    count,
                )
                % {"count": count}
            ),
        )

    @admin.action(description=_("Einrichtungslink erneut senden (noch nicht eingerichtet)"))
    def send_enrolment_link(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        by: Any = request.user
        self._for_each(
            request,
            queryset,
            lambda user: actions.send_enrolment_link(user, by=by),
            lambda count: (
                ngettext(
                    "Einrichtungslink gesendet; ältere Links gelten nicht mehr.",
                    "%(count)d Einrichtungslinks gesendet; ältere Links gelten nicht mehr.",
                    count,
                )
                % {"count": count}
            ),
        )


def link_sent_message(issued: actions.IssuedLink) -> str:
    """What the admin is told: that a link went out and until when, never the link."""
    until = date_format(timezone.localtime(issued.link.expires_at), "SHORT_DATETIME_FORMAT")
    return str(_("Einrichtungslink an die E-Mail-Adresse gesendet, gültig bis %(until)s.")) % {
        "until": until
    }


def stamp_checked(entry: Checked, request: HttpRequest) -> None:
    """Saving a directory entry in the admin counts as checking it."""
    entry.checked_on = timezone.localdate()
    entry.checked_by = request.user  # type: ignore[assignment]


class LocationInline(admin.StackedInline):
    model = Location
    extra = 0


class ServiceInline(admin.StackedInline):
    model = Service
    extra = 0
    exclude = ("checked_on", "checked_by")


class ContactInline(admin.TabularInline):
    model = Contact
    extra = 0
    exclude = ("checked_on", "checked_by")


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "rechtskreis", "public_phone", "checked_on", "checked_by")
    list_filter = ("kind", "rechtskreis")
    search_fields = ("name",)
    exclude = ("checked_on", "checked_by")
    inlines = [LocationInline, ServiceInline, ContactInline]

    def save_model(self, request: HttpRequest, obj: Agency, form: ModelForm, change: bool) -> None:
        actions.attach_agency_group(obj)
        stamp_checked(obj, request)
        super().save_model(request, obj, form, change)

    def save_formset(
        self, request: HttpRequest, form: ModelForm, formset: Any, change: bool
    ) -> None:
        entries = formset.save(commit=False)
        for entry in entries:
            if isinstance(entry, Checked):
                stamp_checked(entry, request)
            entry.save()
        for removed in formset.deleted_objects:
            removed.delete()


class MembershipForm(ActorForm):
    class Meta:
        model = Membership
        fields = ("user", "agency", "role")

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        # On a change, user and agency are read-only and come from the saved row.
        user = cleaned.get("user") or getattr(self.instance, "user", None)
        agency = cleaned.get("agency") or getattr(self.instance, "agency", None)
        role = cleaned.get("role")
        if user is not None and agency is not None and role:
            try:
                actions.check_membership(user, agency=agency, role=role, by=self.actor)
            except actions.ActionError as error:
                self.add_error("role", str(error))
        return cleaned


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    form = MembershipForm
    list_display = ("user", "agency", "role", "created_at")
    list_filter = ("role", "agency")
    search_fields = ("user__full_name", "user__email", "agency__name")
    autocomplete_fields = ("user", "agency")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # User and agency are fixed once created; a move is a removal and a new membership.
        return ("user", "agency") if obj else ()

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        return with_actor(super().get_form(request, obj, change=change, **kwargs), request)

    def save_model(
        self, request: HttpRequest, obj: Membership, form: ModelForm, change: bool
    ) -> None:
        saved = actions.add_membership(
            obj.user, agency=obj.agency, role=obj.role, by=acting(request)
        )
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        actions.remove_membership(obj, by=request.user)  # type: ignore[arg-type]

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("user", "agency__group"):
            actions.remove_membership(membership, by=request.user)  # type: ignore[arg-type]


class ProposalForm(ActorForm):
    role = forms.ChoiceField(
        label=_("Rolle"),
        choices=[(role, Membership.Role(role).label) for role in FOUR_EYES_ROLES],
    )

    class Meta:
        model = MembershipProposal
        fields = ("user", "agency", "role")

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        user, agency, role = cleaned.get("user"), cleaned.get("agency"), cleaned.get("role")
        if user is not None and agency is not None and role:
            try:
                actions.check_proposal(user, agency=agency, role=role, by=self.actor)
            except actions.ActionError as error:
                self.add_error(None, str(error))
        return cleaned


@admin.register(MembershipProposal)
class MembershipProposalAdmin(admin.ModelAdmin):
    """Proposing a case or dpo role, and the second admin's decision where no lead decides
    (an agency's first lead, the network's DPO). A proposal is never edited or deleted: it
    is decided, withdrawn or expires, and stays as the record of who asked and who agreed."""

    form = ProposalForm
    list_display = (
        "user",
        "agency",
        "role",
        "state",
        "decider",
        "proposed_by",
        "proposed_at",
        "valid_until",
        "decided_by",
        "decided_at",
    )
    list_filter = ("state", "role", "agency")
    list_select_related = ("user", "agency", "proposed_by", "decided_by")
    search_fields = ("user__full_name", "user__email", "agency__name")
    autocomplete_fields = ("user", "agency")
    ordering = ("-proposed_at", "-pk")
    actions = ["confirm", "refuse", "withdraw"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        return with_actor(super().get_form(request, obj, change=change, **kwargs), request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # decided through the actions below, never edited

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("entscheidet"))
    def decider(self, proposal: MembershipProposal) -> str:
        if not proposal.is_pending:
            return "–"
        if needs_second_admin(proposal):
            return str(_("zweite Administration"))
        return str(_("Leitung der Einrichtung"))

    @admin.display(description=_("offen bis"))
    def valid_until(self, proposal: MembershipProposal) -> Any:
        return proposal_deadline(proposal) if proposal.is_pending else None

    def save_model(
        self, request: HttpRequest, obj: MembershipProposal, form: ModelForm, change: bool
    ) -> None:
        saved = actions.propose_membership(
            obj.user, agency=obj.agency, role=obj.role, by=acting(request)
        )
        obj.pk, obj.proposed_by, obj.proposed_at = saved.pk, saved.proposed_by, saved.proposed_at

    def _decide(
        self,
        request: HttpRequest,
        queryset: QuerySet[MembershipProposal],
        decide: Any,
        done: str | Promise,
    ) -> None:
        count = 0
        for proposal in queryset.select_related("user", "agency"):
            try:
                decide(proposal, by=acting(request))
            except actions.ActionError as error:
                self.message_user(request, f"{proposal}: {error}", messages.ERROR)
            else:
                count += 1
        if count:
            # A lazy plural: formatting it with the count picks "Vorschlag" or "Vorschläge".
            self.message_user(request, done % {"count": count}, messages.SUCCESS)

    @admin.action(description=_("Bestätigen (als zweite Administration)"))
    def confirm(self, request: HttpRequest, queryset: QuerySet[MembershipProposal]) -> None:
        self._decide(
            request,
            queryset,
            actions.confirm_proposal,
            ngettext_lazy(
                "%(count)d Vorschlag bestätigt.", "%(count)d Vorschläge bestätigt.", "count"
            ),
        )

    @admin.action(description=_("Ablehnen (als zweite Administration)"))
    def refuse(self, request: HttpRequest, queryset: QuerySet[MembershipProposal]) -> None:
        self._decide(
            request,
            queryset,
            actions.refuse_proposal,
            ngettext_lazy(
                "%(count)d Vorschlag abgelehnt.", "%(count)d Vorschläge abgelehnt.", "count"
            ),
        )

    @admin.action(description=_("Zurückziehen"))
    def withdraw(self, request: HttpRequest, queryset: QuerySet[MembershipProposal]) -> None:
        self._decide(
            request,
            queryset,
            actions.withdraw_proposal,
            ngettext_lazy(
                "%(count)d Vorschlag zurückgezogen.", "%(count)d Vorschläge zurückgezogen.", "count"
            ),
        )
