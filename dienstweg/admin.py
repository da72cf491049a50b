"""Admin pages: agencies, memberships, accounts and the directory. Holds no case content.

Saving goes through dienstweg.actions wherever a rule is involved (groups, sessions)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from dienstweg import actions
from dienstweg.models import (
    Agency,
    AuthenticatorDevice,
    Checked,
    Contact,
    Location,
    Membership,
    Service,
    User,
    normalize_email,
)


class StaffCreationForm(ModelForm):
    """Name and e-mail only: the person chooses her password herself, through her link."""

    class Meta:
        model = User
        fields = ("email", "full_name")

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])


class StaffChangeForm(ModelForm):
    """No password field: nobody sets or sees another person's password."""

    class Meta:
        model = User
        fields = ("email", "full_name", "is_active", "is_staff", "is_superuser")

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])


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

    def save_model(self, request: HttpRequest, obj: User, form: ModelForm, change: bool) -> None:
        by: Any = request.user
        if not change:
            issued = actions.create_account(obj.email, full_name=obj.full_name, by=by)
            obj.pk, obj.password = issued.link.user.pk, issued.link.user.password
            obj._state.adding = False
            self.message_user(request, link_sent_message(issued))
            return
        deactivating = "is_active" in form.changed_data and not obj.is_active
        super().save_model(request, obj, form, change)
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
