"""Forms of the platform core."""

from __future__ import annotations

from contextlib import suppress
from datetime import date
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import QuerySet
from django.forms.utils import ErrorDict, flatatt
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.html import conditional_escape, escape, format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from dienstweg import family_search
from dienstweg.access import DirectoryFilter
from dienstweg.actions import (
    ConsentData,
    MemberData,
    already_in_household,
    check_consent_data,
    same_person,
)
from dienstweg.models import Agency, Consent, DataCategory, Family, HouseholdMember, Purpose


class PlainSelect(forms.Select):
    """A <select> built in Python from the choices themselves. Django renders each option
    through a template, about 0.1 ms an option: a lead's list of 125 caseworkers cost 15 ms
    a page (bench/step3.py). The choices are read directly, not through Select's dict per
    option (get_context), which showed in a profile of the lead's start page with its two
    lists of 300 (bench/work_queue.py)."""

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        chosen = {str(item) for item in self.format_value(value)}
        return format_html(
            '<select name="{}"{}>{}</select>',
            name,
            flatatt(self.build_attrs(self.attrs, attrs)),
            self._options(self.choices, chosen),
        )

    def _options(self, choices: Any, chosen: set[str]) -> SafeString:
        parts: list[str] = []
        for option_value, label in choices:
            if isinstance(label, list | tuple):  # a group: (its label, its choices)
                inner = self._options(label, chosen)
                parts.append(format_html('<optgroup label="{}">{}</optgroup>', option_value, inner))
                continue
            key = "" if option_value is None else str(option_value)
            selected = " selected" if key in chosen else ""
            parts.append(
                f'<option value="{escape(key)}"{selected}>{conditional_escape(label)}</option>'
            )
        return SafeString("".join(parts))


class StaffChoiceIterator(forms.models.ModelChoiceIterator):
    """The choices of a list of staff (User rows) as ids and names, read as plain values:
    a big office's 300 caseworkers as model objects cost a lead's start page 5 ms per list
    (bench/work_queue.py). The field still validates a choice against its queryset."""

    def __iter__(self) -> Any:
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for pk, name, email in self.queryset.values_list("pk", "full_name", "email"):
            yield (pk, name or email)  # as User.__str__

    def __len__(self) -> int:
        return self.queryset.count() + (1 if self.field.empty_label is not None else 0)


class StaffChoiceField(forms.ModelChoiceField):
    iterator = StaffChoiceIterator


class LongText(forms.Textarea):
    """A box for free text with a length limit that the browser does not enforce: its
    maxlength would cut a pasted text short without a word. The field refuses a longer
    text and the form comes back with it whole; the limit stays for scripts as
    data-max-chars."""

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        limit = context["widget"]["attrs"].pop("maxlength", None)
        if limit is not None:
            context["widget"]["attrs"]["data-max-chars"] = limit
        return context


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


class FirstCodeForm(forms.Form):
    """The first code of a new authenticator app, which confirms it."""

    token = forms.CharField(
        label=_("Code aus der App"),
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text=_("Der sechsstellige Code, den die App nach dem Scannen anzeigt"),
    )


PASSWORD_RULES = _(
    "Mindestens 12 Zeichen; nicht nur Ziffern, kein gängiges Passwort und nichts, was Ihrem "
    "Namen oder Ihrer E-Mail-Adresse ähnelt."
)


def new_password_fields() -> dict[str, forms.Field]:
    """The two fields in which a person chooses her own password."""
    return {
        "new_password1": forms.CharField(
            label=_("Neues Passwort"),
            strip=False,
            widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
            help_text=PASSWORD_RULES,
        ),
        "new_password2": forms.CharField(
            label=_("Neues Passwort wiederholen"),
            strip=False,
            widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        ),
    }


def check_new_password(form: forms.Form, data: dict[str, Any], user: Any) -> None:
    """Both fields alike, and Django's password rules (AUTH_PASSWORD_VALIDATORS) met."""
    first, second = data.get("new_password1"), data.get("new_password2")
    if first and second and first != second:
        form.add_error("new_password2", _("Die beiden Passwörter stimmen nicht überein."))
    elif first:
        try:
            password_validation.validate_password(first, user=user)
        except forms.ValidationError as error:
            form.add_error("new_password1", error)


class EnrolmentForm(FirstCodeForm):
    """The enrolment link's page: the password (a new one she chooses, or for a lost second
    factor the one she has) and the first code of her new authenticator app."""

    field_order = ["new_password1", "new_password2", "password", "token"]

    def __init__(self, *args: Any, user: Any, chooses_password: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.chooses_password = chooses_password
        if chooses_password:
            self.fields.update(new_password_fields())
        else:
            self.fields["password"] = forms.CharField(
                label=_("Ihr bisheriges Passwort"),
                strip=False,
                widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
            )
        self.order_fields(self.field_order)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.chooses_password:
            check_new_password(self, data, self.user)
        return data

    @property
    def password(self) -> str:
        key = "new_password1" if self.chooses_password else "password"
        return str(self.cleaned_data[key])


class NewPasswordForm(forms.Form):
    """Changing one's own password (after a fresh login)."""

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields.update(new_password_fields())

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        check_new_password(self, data, self.user)
        return data


class ReauthenticationForm(forms.Form):
    password = forms.CharField(
        label=_("Passwort"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )
    token = forms.CharField(
        label=_("Code"),
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text"}),
        help_text=_("Aktueller Code aus der Authenticator-App oder ein Backup-Code"),
    )


class ResetSecondFactorForm(forms.Form):
    reset_password = forms.BooleanField(
        label=_(
            "Auch das Passwort ist vergessen: das Passwort ebenfalls zurücksetzen (über den Link "
            "wird ein neues festgelegt)"
        ),
        required=False,
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


# Families and consent

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class Draft:
    """A form sent back by "weitere Person hinzufügen": it shows what was typed, and no
    errors yet, since the user has not submitted it."""

    drafting = False

    def full_clean(self) -> None:
        if self.drafting:
            self._errors = ErrorDict()
            self.cleaned_data: dict[str, Any] = {}
            return
        super().full_clean()  # type: ignore[misc]


class DraftFormSet(forms.BaseFormSet):
    """A formset of Draft forms that can grow by one empty row per submit, without
    JavaScript (the "weitere Person hinzufügen" button)."""

    ADD = "add_member"
    drafting = False

    @classmethod
    def with_added_row(cls, data: Any, prefix: str) -> Any:
        """A copy of the POST DATA with one more row, if the add button sent it; else DATA."""
        if data is None or cls.ADD not in data:
            return data
        data = data.copy()
        key = f"{prefix}-TOTAL_FORMS"
        # A broken management form stays as it is: the formset says so when submitted.
        with suppress(ValueError):
            data[key] = str(int(data.get(key, "0")) + 1)
        return data

    def full_clean(self) -> None:
        if self.drafting:
            self._errors: list[ErrorDict] = []
            self._non_form_errors = self.error_class()
            for form in self.forms:
                form.drafting = True
            return
        super().full_clean()


class FamilyContactForm(Draft, forms.Form):
    address = forms.CharField(label=_("Anschrift"), max_length=300)
    phone = forms.CharField(label=_("Telefon"), max_length=40, required=False)
    notes = forms.CharField(
        label=_("Notizen"),
        max_length=4000,
        required=False,
        widget=LongText(attrs={"rows": 4}),
    )


class FamilyForm(FamilyContactForm):
    owner = forms.ModelChoiceField(label=_("Projekt"), queryset=Agency.objects.none())
    confirm_duplicate = forms.BooleanField(
        label=_("Trotzdem neu anlegen: es ist eine andere Familie"), required=False
    )

    def __init__(self, *args: Any, owners: QuerySet[Agency], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = owners  # type: ignore[attr-defined]
        if owners.count() == 1:
            self.fields["owner"].initial = owners.first()
            self.fields["owner"].widget = forms.HiddenInput()


class FamilyEditForm(FamilyContactForm):
    # family_version when the page was shown: a change by someone else in between is
    # refused instead of silently overwritten.
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)


class MemberForm(Draft, forms.Form):
    # The select always submits a value: with the same value as initial, an unused row
    # counts as unchanged and is skipped instead of failing for its empty names.
    kind = forms.ChoiceField(
        label=_("Art"), choices=HouseholdMember.Kind.choices, initial=HouseholdMember.Kind.ADULT
    )
    first_name = forms.CharField(label=_("Vorname"), max_length=100)
    last_name = forms.CharField(label=_("Nachname"), max_length=100)
    birth_date = forms.DateField(label=_("Geburtsdatum"), widget=DATE_INPUT)

    def clean_birth_date(self) -> date:
        born: date = self.cleaned_data["birth_date"]
        if born > timezone.localdate() or born.year < 1900:
            raise forms.ValidationError(_("Bitte ein gültiges Geburtsdatum angeben."))
        return born

    def to_data(self) -> MemberData:
        data = self.cleaned_data
        return MemberData(
            kind=data["kind"],
            first_name=data["first_name"].strip(),
            last_name=data["last_name"].strip(),
            birth_date=data["birth_date"],
        )


class MemberEditForm(MemberForm):
    """A row of the household on the edit page: an existing person (with her id) or a new
    one (without). change_family checks that the id is one of the family's."""

    id = forms.CharField(widget=forms.HiddenInput, required=False, max_length=36)


# Any number of people: one row more per "weitere Person hinzufügen" (no upper limit but
# Django's own guard against a forged row count).
MemberFormSet = cast(
    "type[DraftFormSet]",
    forms.formset_factory(MemberForm, formset=DraftFormSet, extra=4, min_num=1, validate_min=True),
)


class MemberEditFormSetBase(DraftFormSet):
    def add_fields(self, form: forms.Form, index: int | None) -> None:
        super().add_fields(form, index)
        if "DELETE" in form.fields:
            form.fields["DELETE"].label = _("Person aus dem Haushalt entfernen")

    def clean(self) -> None:
        """A person added who is in the household already (as the rows above say, the
        stored ones decrypted for the page) is refused beside her row; change_family
        refuses her too, against the household as stored."""
        super().clean()
        if any(self.errors):
            return
        kept = [row for row in self.forms if not row.cleaned_data.get("DELETE")]
        household = [row.to_data() for row in kept if row.cleaned_data.get("id")]
        for row in kept:
            if row.cleaned_data.get("id") or not row.has_changed():
                continue
            data = row.to_data()
            if any(same_person(data, person) for person in household):
                row.add_error("first_name", already_in_household(data))
            else:
                household.append(data)


MemberEditFormSet = cast(
    "type[DraftFormSet]",
    forms.formset_factory(
        MemberEditForm,
        formset=MemberEditFormSetBase,
        extra=1,
        can_delete=True,
        can_delete_extra=False,
    ),
)


class FamilySearchForm(forms.Form):
    """Part of a name, a reference or a birth date, in one field; sent by POST so that
    names stay out of URLs, and looked up through keyed tokens (dienstweg/family_search.py)."""

    query = forms.CharField(
        label=_("Name, Kennung oder Geburtsdatum"),
        max_length=100,
        help_text=_("z. B. Yılmaz, Ayş, F-2026-0042, 12.04.1988 oder 1988"),
        # Names are not remembered by the browser: the device may be shared.
        widget=forms.TextInput(
            attrs={"type": "search", "autocomplete": "off", "spellcheck": "false"}
        ),
    )
    page = forms.IntegerField(
        min_value=1, max_value=10_000, required=False, widget=forms.HiddenInput
    )
    terms: list[family_search.Term] = []

    def clean_query(self) -> str:
        query: str = self.cleaned_data["query"]
        self.terms = family_search.parse(query)
        if not self.terms:
            raise forms.ValidationError(
                _(
                    "Bitte mindestens 3 Buchstaben eines Namens, eine Kennung oder ein "
                    "Geburtsdatum eingeben."
                )
            )
        return query


class MemberChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.display_name} ({obj.get_kind_display()})"


class ConsentForm(forms.Form):
    recipients = forms.ModelMultipleChoiceField(
        label=_("Empfänger"),
        queryset=Agency.objects.none(),
        widget=forms.CheckboxSelectMultiple,
    )
    categories = forms.MultipleChoiceField(
        label=_("Datenkategorien"),
        choices=DataCategory.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    purposes = forms.MultipleChoiceField(
        label=_("Zwecke"), choices=Purpose.choices, widget=forms.CheckboxSelectMultiple
    )
    valid_from = forms.DateField(label=_("Gültig ab"), widget=DATE_INPUT)
    valid_until = forms.DateField(label=_("Gültig bis"), widget=DATE_INPUT)
    given_by = MemberChoiceField(label=_("Erteilt von"), queryset=HouseholdMember.objects.none())
    capacity = forms.ChoiceField(label=_("Eigenschaft"), choices=Consent.Capacity.choices)
    on_behalf_of = MemberChoiceField(
        label=_("Für das Kind"), queryset=HouseholdMember.objects.none(), required=False
    )
    method = forms.ChoiceField(label=_("Form"), choices=Consent.Method.choices)
    witness_note = forms.CharField(
        label=_("Zeugenvermerk"),
        required=False,
        max_length=1000,
        widget=LongText(attrs={"rows": 2}),
        help_text=_("Bei mündlicher Einwilligung: wer war dabei, wann, wie wurde belehrt."),
    )
    text_version = forms.CharField(label=_("Version des Einwilligungstexts"), max_length=40)
    evidence = forms.FileField(
        label=_("Nachweis (Scan, PDF/JPEG/PNG)"),
        required=False,
        help_text=_("PDF, JPEG oder PNG. Wird verschlüsselt gespeichert."),
    )

    def __init__(self, *args: Any, family: Family, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.family = family
        members = family.members.all()
        self.fields["recipients"].queryset = Agency.objects.exclude(  # type: ignore[attr-defined]
            pk=family.owner_id
        )
        self.fields["given_by"].queryset = members  # type: ignore[attr-defined]
        self.fields["on_behalf_of"].queryset = members.filter(  # type: ignore[attr-defined]
            kind=HouseholdMember.Kind.CHILD
        )
        self.fields["valid_from"].initial = timezone.localdate()
        self.fields["text_version"].initial = settings.CONSENT_TEXT_VERSION

    def clean_evidence(self) -> bytes | None:
        upload = self.cleaned_data.get("evidence")
        if upload is None:
            return None
        if upload.size > settings.EVIDENCE_MAX_BYTES:
            raise forms.ValidationError(
                _("Der Nachweis ist zu groß (höchstens %(limit)s).")
                % {"limit": filesizeformat(settings.EVIDENCE_MAX_BYTES)}
            )
        content: bytes = upload.read()
        return content

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        for problem in check_consent_data(self.family, self.to_data()):
            self.add_error(None, str(problem))
        return cleaned

    def to_data(self) -> ConsentData:
        data = self.cleaned_data
        return ConsentData(
            recipients=list(data["recipients"]),
            categories=list(data["categories"]),
            purposes=list(data["purposes"]),
            valid_from=data["valid_from"],
            valid_until=data["valid_until"],
            given_by=data["given_by"],
            on_behalf_of=data.get("on_behalf_of"),
            capacity=data["capacity"],
            method=data["method"],
            witness_note=data.get("witness_note", ""),
            text_version=data["text_version"],
            evidence=data.get("evidence"),
        )


class RevokeConsentForm(forms.Form):
    note = forms.CharField(
        label=_("Vermerk zum Widerruf"),
        required=False,
        max_length=1000,
        widget=forms.TextInput(),
    )
