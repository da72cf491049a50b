"""Admin pages: agencies, memberships, accounts and the directory. Holds no case content.

Saving goes through dienstweg.actions wherever a rule is involved (groups, sessions)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm, UserChangeForm
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from dienstweg import actions
from dienstweg.models import (
    Agency,
    Checked,
    Contact,
    Location,
    Membership,
    Service,
    User,
)


class StaffCreationForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name")


class StaffChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


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

    def save_model(self, request: HttpRequest, obj: User, form: ModelForm, change: bool) -> None:
        deactivating = change and "is_active" in form.changed_data and not obj.is_active
        super().save_model(request, obj, form, change)
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


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "agency", "role", "created_at")
    list_filter = ("role", "agency")
    search_fields = ("user__full_name", "user__email", "agency__name")
    autocomplete_fields = ("user", "agency")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # User and agency are fixed once created; a move is a removal and a new membership.
        return ("user", "agency") if obj else ()

    def save_model(
        self, request: HttpRequest, obj: Membership, form: ModelForm, change: bool
    ) -> None:
        saved = actions.add_membership(
            obj.user,
            agency=obj.agency,
            role=obj.role,
            by=request.user,  # type: ignore[arg-type]
        )
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        actions.remove_membership(obj, by=request.user)  # type: ignore[arg-type]

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("user", "agency__group"):
            actions.remove_membership(membership, by=request.user)  # type: ignore[arg-type]
