"""Forms of referrals and application tags."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dienstweg.consent import consent_scope
from dienstweg.forms import PlainSelect
from dienstweg.models import Agency, DataCategory, Family, Purpose, User
from referrals.actions import PUBLIC_KINDS, ReferralData, TagData, Upload
from referrals.models import ApplicationTag, Referral

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input (Django's documented pattern)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        return [super().clean(data, initial)] if data else []


class ReferralForm(forms.Form):
    to_agency = forms.ModelChoiceField(label=_("An"), queryset=Agency.objects.none())
    need = forms.CharField(
        label=_("Bedarf"),
        max_length=200,
        help_text=_("Kurz: worum geht es? (z. B. Arbeitsvermittlung, Kita-Platz)"),
    )
    summary = forms.CharField(
        label=_("Zusammenfassung"),
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    categories = forms.MultipleChoiceField(
        label=_("Geteilte Datenkategorien"), widget=forms.CheckboxSelectMultiple
    )
    basis_reason = forms.CharField(
        label=_("Begründung der Übermittlung ohne Einwilligung"),
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
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
                widget=forms.Textarea(attrs={"rows": 2}),
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
        label=_("Begründung"), max_length=5000, widget=forms.Textarea(attrs={"rows": 3})
    )


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        label=_("Zuweisen an"), queryset=User.objects.none(), widget=PlainSelect
    )

    def __init__(self, *args: Any, agency_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = (  # type: ignore[attr-defined]
            User.objects.filter(
                memberships__agency_id=agency_id,
                memberships__role__in=["caseworker", "lead"],
                is_active=True,
            )
            .distinct()
            .order_by("full_name")
        )


class TagForm(forms.Form):
    kind = forms.ChoiceField(label=_("Antrag"), choices=ApplicationTag.Kind.choices)
    processing_agency = forms.ModelChoiceField(
        label=_("Bearbeitende Stelle"), queryset=Agency.objects.none()
    )
    submitted_on = forms.DateField(label=_("Eingereicht am"), widget=DATE_INPUT)
    file_number = forms.CharField(label=_("Aktenzeichen der Stelle"), max_length=60, required=False)

    def __init__(self, *args: Any, family: Family, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["processing_agency"].queryset = (  # type: ignore[attr-defined]
            Agency.objects.filter(kind__in=PUBLIC_KINDS).order_by("name")
        )
        self.fields["submitted_on"].initial = timezone.localdate()

    def to_data(self) -> TagData:
        data = self.cleaned_data
        return TagData(
            kind=data["kind"],
            processing_agency=data["processing_agency"],
            submitted_on=data["submitted_on"],
            file_number=data["file_number"],
        )


class TagLookupForm(forms.Form):
    code = forms.CharField(
        label=_("Code vom Antrag"),
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
    )


class TagStatusForm(forms.Form):
    state = forms.ChoiceField(
        label=_("Neuer Stand"),
        choices=[c for c in ApplicationTag.State.choices if c[0] != "submitted"],
    )
    note = forms.CharField(
        label=_("Fehlende Unterlagen"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Nur bei „Unterlagen nachgefordert“: was fehlt?"),
    )
    decided_on = forms.DateField(label=_("Entschieden am"), required=False, widget=DATE_INPUT)
