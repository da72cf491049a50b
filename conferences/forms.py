"""The form that convenes a Familienkonferenz."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from conferences.actions import MAX_INVITEES, MAX_TEXT, AgreementData, ConferenceData
from conferences.actions.agreements import MAX_WHAT, responsible_people
from conferences.actions.consultations import MAX_QUESTION
from conferences.models import Conference, GapReason, Invitation
from dienstweg.access import CASE_ROLES
from dienstweg.consent import consent_scope
from dienstweg.forms import LongText, PlainSelect
from dienstweg.models import Agency, DataCategory, Family, Membership, Purpose, User


@dataclass(frozen=True)
class InviteeGroup:
    """An agency that the consent covers for case coordination, with what it covers and
    the people one may invite from it."""

    agency: Agency
    categories: list[str]
    people: list[User]


class ConferenceForm(forms.Form):
    date = forms.DateField(
        label=_("Datum"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    time = forms.TimeField(label=_("Beginn"), widget=forms.TimeInput(attrs={"type": "time"}))
    duration_minutes = forms.IntegerField(
        label=_("Dauer in Minuten"), min_value=15, max_value=480, initial=90
    )
    place = forms.CharField(
        label=pgettext_lazy("Treffpunkt", "Ort"),
        max_length=200,
        required=False,
        help_text=_("z. B. Familienbüro, Raum 2. Steht im Kalendereintrag der Eingeladenen."),
    )
    video_link = forms.URLField(
        label=_("Video-Link"),
        max_length=300,
        required=False,
        assume_scheme="https",
        help_text=_("Statt oder neben dem Ort; beginnt mit https://"),
    )
    agenda = forms.CharField(
        label=_("Tagesordnung"),
        max_length=MAX_TEXT,
        required=False,
        widget=LongText(attrs={"rows": 4}),
    )
    categories = forms.MultipleChoiceField(
        label=_("Geteilte Datenkategorien"), widget=forms.CheckboxSelectMultiple
    )
    invitees = forms.ModelMultipleChoiceField(
        label=_("Eingeladen"), queryset=User.objects.none(), widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, family: Family, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.family = family
        scope = consent_scope(family, purpose=Purpose.CASE_COORDINATION)
        agencies = list(
            Agency.objects.filter(pk__in=scope.agency_ids)
            .exclude(pk=family.owner_id)
            .order_by("name")
        )
        members = (
            Membership.objects.filter(
                agency__in=agencies, role__in=CASE_ROLES, user__is_active=True
            )
            .select_related("user")
            .order_by("user__full_name")
        )
        people: dict[int, list[User]] = {}
        for membership in members:
            people.setdefault(membership.agency_id, []).append(membership.user)
        self.groups = [
            InviteeGroup(
                agency,
                [
                    str(DataCategory(c).label)
                    for c in DataCategory.values
                    if c in scope.categories_for(agency.pk)
                ],
                people.get(agency.pk, []),
            )
            for agency in agencies
        ]
        self.fields["invitees"].queryset = User.objects.filter(  # type: ignore[attr-defined]
            pk__in=[user.pk for group in self.groups for user in group.people]
        )
        choices = [c for c in DataCategory.choices if c[0] in scope.categories]
        self.fields["categories"].choices = choices  # type: ignore[attr-defined]
        # One text per category: only what is written under a shared category is shared.
        for value, label in choices:
            if value == DataCategory.IDENTITY:
                continue  # shared from the record itself
            self.fields[f"note_{value}"] = forms.CharField(
                label=_("Angaben: %(category)s") % {"category": label},
                max_length=MAX_TEXT,
                required=False,
                widget=LongText(attrs={"rows": 2}),
            )

    @property
    def note_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith("note_")]

    @property
    def chosen_invitees(self) -> set[str]:
        return {str(value) for value in (self["invitees"].value() or [])}

    def clean_invitees(self) -> list[User]:
        invitees = list(self.cleaned_data["invitees"])
        if len(invitees) > MAX_INVITEES:
            raise forms.ValidationError(
                _("Höchstens %(max)d Personen können eingeladen werden.") % {"max": MAX_INVITEES}
            )
        return invitees

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "date" in data and "time" in data:
            starts_at = timezone.make_aware(datetime.combine(data["date"], data["time"]))
            if starts_at < timezone.now():
                self.add_error("date", _("Der Termin liegt in der Vergangenheit."))
            data["starts_at"] = starts_at
        if not data.get("place", "").strip() and not data.get("video_link", "").strip():
            self.add_error("place", _("Bitte geben Sie einen Ort oder einen Video-Link an."))
        return data

    def to_data(self) -> ConferenceData:
        data = self.cleaned_data
        categories = list(data["categories"])
        return ConferenceData(
            starts_at=data["starts_at"],
            duration_minutes=data["duration_minutes"],
            place=data["place"],
            video_link=data["video_link"],
            agenda=data["agenda"],
            categories=categories,
            invitees=list(data["invitees"]),
            notes={
                c: data[f"note_{c}"].strip()
                for c in categories
                if data.get(f"note_{c}", "").strip()
            },
        )


FAMILY = "family"


class AgreementForm(forms.Form):
    what = forms.CharField(
        label=_("Was wird vereinbart?"),
        max_length=MAX_WHAT,
        widget=LongText(attrs={"rows": 2}),
        help_text=_("Kurz und klar, die Familie bekommt es als Protokoll."),
    )
    # Built in Python: Django's option templates were a tenth of the conference page.
    responsible = forms.ChoiceField(label=_("Wer ist zuständig?"), widget=PlainSelect)
    person = forms.ChoiceField(label=_("Person (freiwillig)"), required=False, widget=PlainSelect)
    due_on = forms.DateField(
        label=_("Bis wann?"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def __init__(
        self, *args: Any, conference: Conference, invitations: list[Invitation], **kwargs: Any
    ) -> None:
        """INVITATIONS: all of the conference's, with user and agency, by agency and name
        (participants_of, which the page reads anyway). Only those whose access is open
        are offered; record_agreement checks again on the locked conference."""
        super().__init__(*args, **kwargs)
        self.conference = conference
        today = timezone.localdate()
        invited = [
            invitation
            for invitation in invitations
            if invitation.access_ended_at is None and invitation.access_until >= today
        ]
        project = conference.project
        self.agencies = {project.pk: project}
        for invitation in invited:
            self.agencies.setdefault(invitation.agency_id, invitation.agency)
        self.fields["responsible"].choices = [  # type: ignore[attr-defined]
            (FAMILY, _("die Familie selbst")),
            *((str(pk), agency.name) for pk, agency in self.agencies.items()),
        ]
        self.people: dict[int, User] = {}
        choices: list[tuple[str, Any]] = [("", _("– niemand Bestimmtes –"))]
        for user in responsible_people(conference, project).order_by("full_name"):
            self.people[user.pk] = user
            choices.append((str(user.pk), f"{user.full_name} ({project.name})"))
        for invitation in invited:
            self.people[invitation.user_id] = invitation.user
            choices.append(
                (str(invitation.user_id), f"{invitation.user.full_name} ({invitation.agency.name})")
            )
        self.fields["person"].choices = choices  # type: ignore[attr-defined]

    def to_data(self) -> AgreementData:
        data = self.cleaned_data
        responsible = data["responsible"]
        person = data.get("person")
        return AgreementData(
            what=data["what"],
            agency=None if responsible == FAMILY else self.agencies[int(responsible)],
            person=self.people[int(person)] if person else None,
            due_on=data["due_on"],
        )


class CloseForm(forms.Form):
    outcome = forms.ChoiceField(
        label=_("Ergebnis"),
        choices=[("done", _("erledigt")), ("not_possible", _("nicht möglich"))],
        widget=forms.RadioSelect,
    )
    reason = forms.ChoiceField(
        label=_("Warum nicht möglich?"),
        choices=[("", "–"), *GapReason.choices],
        required=False,
        help_text=_("Die Strukturkonferenz zählt diese Gründe, ohne die Familie zu nennen."),
    )
    note = forms.CharField(
        label=_("Anmerkung (freiwillig)"),
        max_length=MAX_WHAT,
        required=False,
        widget=LongText(attrs={"rows": 2}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("outcome") == "not_possible" and not data.get("reason"):
            self.add_error("reason", _("Bitte wählen Sie, warum es nicht möglich war."))
        return data


class ConsultationForm(forms.Form):
    agencies = forms.ModelMultipleChoiceField(
        label=_("Welche Stellen fragen Sie?"),
        queryset=Agency.objects.none(),
        widget=forms.CheckboxSelectMultiple,
    )
    question = forms.CharField(
        label=_("Fall und Frage, ohne die Familie zu nennen"),
        max_length=MAX_QUESTION,
        widget=LongText(attrs={"rows": 6}),
        help_text=_(
            "Keine Namen, Geburtsdaten, Anschrift oder Telefonnummer: Die Plattform prüft den "
            "Text gegen die Akte und sendet nichts, was die Familie nennt. Schreiben Sie z. B. "
            "„Alleinerziehende Mutter, zwei Kinder (3 und 8), sucht Teilzeit“."
        ),
    )

    def __init__(self, *args: Any, family: Family, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["agencies"].queryset = Agency.objects.exclude(  # type: ignore[attr-defined]
            pk=family.owner_id
        ).order_by("name")


class AnswerForm(forms.Form):
    text = forms.CharField(
        label=_("Ihre Antwort"), max_length=MAX_QUESTION, widget=LongText(attrs={"rows": 3})
    )


REPORT_SPAN_DAYS = 3 * 366  # a longer period is a typo (and a heavier query)


class ReportForm(forms.Form):
    # ISO dates: the only form a browser's date field takes as its value.
    start = forms.DateField(
        label=_("von"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    end = forms.DateField(
        label=_("bis"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end:
            if start > end:
                self.add_error("end", _("„bis“ liegt vor „von“."))
            elif (end - start).days > REPORT_SPAN_DAYS:
                self.add_error("start", _("Höchstens drei Jahre auf einmal."))
        return data
