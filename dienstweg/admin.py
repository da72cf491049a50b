"""Admin pages: agencies, memberships, role proposals, accounts and the directory. Holds no
case content.

Saving goes through dienstweg.actions wherever a rule is involved (groups, sessions, admin
rights, roles); each form asks the action's own check first, so a refusal shows as a German
error on the form and nothing is saved."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm, UserChangeForm
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from dienstweg import actions
from dienstweg.access import FOUR_EYES_ROLES, needs_second_admin, proposal_deadline
from dienstweg.models import (
    Agency,
    Checked,
    Contact,
    Location,
    Membership,
    MembershipProposal,
    Service,
    User,
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


class StaffCreationForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name")


class StaffChangeForm(UserChangeForm):
    actor: User | None = None  # set by StaffAdmin.get_form

    class Meta:
        model = User
        fields = "__all__"

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
    ordering = ("full_name",)
    list_display = ("full_name", "email", "is_active", "is_staff", "last_login")
    list_filter = ("is_active", "is_staff", "memberships__agency")
    search_fields = ("full_name", "email")
    readonly_fields = ("last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("email", "full_name", "password")}),
        (_("Status"), {"fields": ("is_active", "is_staff", "is_superuser")}),
        (_("Daten"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"fields": ("email", "full_name", "password1", "password2")}),)
    filter_horizontal = ()
    inlines = [MembershipInline]
    actions = ["end_all_sessions", "reset_second_factor", "deactivate"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return with_actor(form, request) if hasattr(form, "actor") else form

    def save_model(self, request: HttpRequest, obj: User, form: ModelForm, change: bool) -> None:
        deactivating = change and "is_active" in form.changed_data and not obj.is_active
        rights = change and bool({"is_staff", "is_superuser"} & set(form.changed_data))
        staff, superuser = obj.is_staff, obj.is_superuser
        if rights:  # admin rights change only through their action (checked, audited)
            obj.is_staff = bool(form.initial.get("is_staff"))
            obj.is_superuser = bool(form.initial.get("is_superuser"))
        super().save_model(request, obj, form, change)
        if rights:
            actions.set_admin_rights(obj, staff=staff, superuser=superuser, by=acting(request))
        if deactivating:
            actions.deactivate_staff(obj, by=request.user)  # type: ignore[arg-type]

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

    @admin.action(description=_("Zweiten Faktor zurücksetzen (neu einrichten lassen)"))
    def reset_second_factor(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            actions.reset_second_factor(user, by=request.user)  # type: ignore[arg-type]
        self.message_user(
            request,
            _("Zweiter Faktor zurückgesetzt; beim nächsten Anmelden wird er neu eingerichtet."),
            messages.WARNING,
        )


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
            self.message_user(request, str(done) % {"count": count}, messages.SUCCESS)

    @admin.action(description=_("Bestätigen (als zweite Administration)"))
    def confirm(self, request: HttpRequest, queryset: QuerySet[MembershipProposal]) -> None:
        self._decide(
            request,
            queryset,
            actions.confirm_proposal,
            _("%(count)d Vorschlag/Vorschläge bestätigt."),
        )

    @admin.action(description=_("Ablehnen (als zweite Administration)"))
    def refuse(self, request: HttpRequest, queryset: QuerySet[MembershipProposal]) -> None:
        self._decide(
            request,
            queryset,
            actions.refuse_proposal,
            _("%(count)d Vorschlag/Vorschläge abgelehnt."),
        )

    @admin.action(description=_("Zurückziehen"))
    def withdraw(self, request: HttpRequest, queryset: QuerySet[MembershipProposal]) -> None:
        self._decide(
            request,
            queryset,
            actions.withdraw_proposal,
            _("%(count)d Vorschlag/Vorschläge zurückgezogen."),
        )
