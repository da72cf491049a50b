"""Forms of the platform core."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from dienstweg.access import DirectoryFilter
from dienstweg.models import Agency


class LoginForm(AuthenticationForm):
    username = forms.EmailField(
        label=_("E-Mail-Adresse"),
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    error_messages = {
        # One message for every failure: it must not tell whether the account exists.
        "invalid_login": _("E-Mail-Adresse oder Passwort ist falsch."),
        "inactive": _("E-Mail-Adresse oder Passwort ist falsch."),
    }


class TokenForm(forms.Form):
    token = forms.CharField(
        label=_("Code"),
        max_length=20,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}
        ),
        help_text=_("Sechsstelliger Code aus der Authenticator-App oder ein Backup-Code"),
    )


class DirectorySearchForm(forms.Form):
    q = forms.CharField(label=_("Suche"), required=False, max_length=100)
    kind = forms.ChoiceField(
        label=_("Art"), required=False, choices=[("", _("alle")), *Agency.Kind.choices]
    )
    rechtskreis = forms.ChoiceField(
        label=_("Rechtskreis"),
        required=False,
        choices=[("", _("alle")), *Agency.Rechtskreis.choices],
    )
    language = forms.CharField(label=_("Sprache"), required=False, max_length=40)
    accepting = forms.BooleanField(label=_("nimmt neue Familien auf"), required=False)

    def to_filter(self) -> DirectoryFilter:
        if not self.is_valid():
            return DirectoryFilter()
        data = self.cleaned_data
        return DirectoryFilter(
            query=data["q"].strip(),
            kind=data["kind"],
            rechtskreis=data["rechtskreis"],
            language=data["language"].strip(),
            accepting_only=data["accepting"],
        )
