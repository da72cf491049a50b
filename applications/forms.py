"""Forms of application tags: tagging an application, looking a tag up by its code, and
the processing office's step."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from applications.actions import TagData
from applications.models import ApplicationTag
from dienstweg.forms import LongText
from dienstweg.models import PUBLIC_KINDS, Agency, Family

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


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
        widget=LongText(attrs={"rows": 2}),
        help_text=_("Nur bei „Unterlagen nachgefordert“: was fehlt?"),
    )
    decided_on = forms.DateField(label=_("Entschieden am"), required=False, widget=DATE_INPUT)
