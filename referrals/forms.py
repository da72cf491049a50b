"""Forms of referrals."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from dienstweg.access import Role, members_holding
from dienstweg.consent import consent_scope
from dienstweg.forms import LongText, PlainSelect, StaffChoiceField
from dienstweg.models import PUBLIC_KINDS, Agency, DataCategory, Family, Purpose, User
from dienstweg.uploads import MultipleFileField, Upload
from referrals.actions.steps import ReferralData
from referrals.models import NeedKind, Referral


class ReferralForm(forms.Form):
    to_agency = forms.ModelChoiceField(label=_("An"), queryset=Agency.objects.none())
    need_kind = forms.ChoiceField(
        label=_("Bereich"),
        choices=NeedKind.choices,
        initial=NeedKind.OTHER,
        required=False,  # "Sonstiges" when not chosen
        widget=PlainSelect,
        help_text=_(
            "Steht in der Eingangsliste der Stelle. Gesundheit und Sucht bitte als "
            "„Beratung und Begleitung“ oder „Sonstiges“: Einzelheiten gehören in den Bedarf."
        ),
    )
    need = forms.CharField(
        label=_("Bedarf"),
        max_length=200,
        help_text=_("Kurz: worum geht es? (z. B. Arbeitsvermittlung, Kita-Platz)"),
    )
    summary = forms.CharField(
        label=_("Zusammenfassung"),
        max_length=5000,
        required=False,
        widget=LongText(attrs={"rows": 4}),
    )
    categories = forms.MultipleChoiceField(
        label=_("Geteilte Datenkategorien"), widget=forms.CheckboxSelectMultiple
    )
    basis_reason = forms.CharField(
        label=_("Begründung der Übermittlung ohne Einwilligung"),
        max_length=5000,
        required=False,
        widget=LongText(attrs={"rows": 4}),
    )
    attachments = MultipleFileField(
        label=_("Anhänge (PDF, JPEG oder PNG)"),
        required=False,
        help_text=_("Höchstens fünf Dateien; sie werden verschlüsselt gespeichert."),
    )

    def __init__(self, *args: Any, family: Family, basis: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.family = family
        self.basis = basis
        agencies = Agency.objects.exclude(pk=family.owner_id).order_by("name")
        if basis == Referral.Basis.CONSENT:
            scope = consent_scope(family, purpose=Purpose.REFERRAL)
            agencies = agencies.filter(pk__in=scope.agency_ids)
            choices = [c for c in DataCategory.choices if c[0] in scope.categories]
            del self.fields["basis_reason"]
        elif basis == Referral.Basis.CHILD_PROTECTION:
            agencies = agencies.filter(kind=Agency.Kind.JUGENDAMT)
            choices = list(DataCategory.choices)
        else:
            agencies = agencies.filter(kind__in=PUBLIC_KINDS)
            choices = list(DataCategory.choices)
        self.fields["to_agency"].queryset = agencies  # type: ignore[attr-defined]
        self.fields["categories"].choices = choices  # type: ignore[attr-defined]
        if basis != Referral.Basis.CONSENT:
            self.fields["basis_reason"].required = True
        # One text per category: only what is written under a shared category is sent.
        for value, label in choices:
            if value == DataCategory.IDENTITY:
                continue  # sent from the record itself
            self.fields[f"note_{value}"] = forms.CharField(
                label=_("Angaben: %(category)s") % {"category": label},
                max_length=5000,
                required=False,
                widget=LongText(attrs={"rows": 2}),
            )

    @property
    def note_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith("note_")]

    def clean_attachments(self) -> list[Upload]:
        uploads = []
        for upload in self.cleaned_data.get("attachments") or []:
            if upload.size > settings.ATTACHMENT_MAX_BYTES:
                raise forms.ValidationError(
                    _("„%(name)s“ ist zu groß (höchstens %(limit)s).")
                    % {"name": upload.name, "limit": filesizeformat(settings.ATTACHMENT_MAX_BYTES)}
                )
            uploads.append(Upload(name=upload.name or "", content=upload.read()))
        return uploads

    def to_data(self) -> ReferralData:
        data = self.cleaned_data
        categories = list(data["categories"])
        return ReferralData(
            to_agency=data["to_agency"],
            need=data["need"],
            need_kind=data["need_kind"] or NeedKind.OTHER,
            summary=data["summary"],
            categories=categories,
            notes={
                c: data[f"note_{c}"].strip()
                for c in categories
                if data.get(f"note_{c}", "").strip()
            },
            basis=self.basis,
            basis_reason=data.get("basis_reason", ""),
            attachments=data["attachments"],
        )


class ReferralFilterForm(forms.Form):
    state = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("alle")), *Referral.State.choices],
        widget=PlainSelect,
    )
    agency = forms.ModelChoiceField(
        label=_("Stelle"),
        required=False,
        queryset=Agency.objects.order_by("name"),
        widget=PlainSelect,
    )
    assignee = forms.ChoiceField(
        label=_("Zuständig"),
        required=False,
        choices=[("", _("alle")), ("me", _("ich")), ("none", _("niemand"))],
        widget=PlainSelect,
    )
    overdue = forms.BooleanField(label=_("nur überfällige"), required=False)


class NoteForm(forms.Form):
    note = forms.CharField(
        label=_("Begründung"), max_length=5000, widget=LongText(attrs={"rows": 3})
    )


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        label=_("Zuweisen an"), queryset=User.objects.none(), widget=PlainSelect
    )

    def __init__(self, *args: Any, agency_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = (  # type: ignore[attr-defined]
            members_holding(Role.CASEWORKER, Role.LEAD, agencies=agency_id)
            .filter(is_active=True)
            .order_by("full_name")
        )


class AssignManyForm(forms.Form):
    """The person to assign the referrals ticked in the inbox to (the ticked ids are read
    by the view, each looked up through the access rules)."""

    assignee = StaffChoiceField(
        label=_("Zuweisen an"),
        queryset=User.objects.none(),
        widget=PlainSelect,
        error_messages={"required": _("Bitte eine Fachkraft der Stelle wählen.")},
    )

    def __init__(self, *args: Any, agency_ids: list[int], **kwargs: Any) -> None:
        # Its own ids: the list's filter above has an "assignee" field too.
        kwargs.setdefault("auto_id", "assign-%s")
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = (  # type: ignore[attr-defined]
            members_holding(Role.CASEWORKER, Role.LEAD, agencies=agency_ids)
            .filter(is_active=True)
            .order_by("full_name")
        )
