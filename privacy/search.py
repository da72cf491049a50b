"""Searching the trail: the DPO's filters, checked, and the events they select.

Every filter maps to one of the indexes in the console's order (AuditEvent.Meta.indexes),
so a page of results is an index range scan on millions of events. The same filter serves
the page and the exports. Both search only the DPO's scope: the events in which her
agencies acted (agency_id, itself such an index), or the whole trail for the network's DPO."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.forms.utils import flatatt
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from audit import registry
from audit.models import AuditEvent
from audit.trail import LABEL
from dienstweg.access import DpoScope
from dienstweg.forms import PlainSelect
from dienstweg.models import Agency, Family, User

# The kinds of action, as the dropdown groups them (registry.nouns()); an undeclared kind
# shows its noun.
ACTION_GROUPS: dict[str, Promise] = {
    "account": _("Konten"),
    "application_tag": _("Anträge"),
    "audit": _("Protokoll"),
    "auth": _("Anmeldung"),
    "backup": _("Sicherungen"),
    "consent": _("Einwilligungen"),
    "console": _("Datenschutz-Konsole"),
    "family": _("Familien"),
    "membership": _("Rollen und Mitgliedschaften"),
    "message": _("Nachrichten"),
    "referral": _("Vermittlungen"),
    "retention": _("Aufbewahrung"),
    "session": _("Sitzungen"),
    "thread": _("Unterhaltungen"),
    "vault": _("Schlüssel"),
}


def action_choices() -> list[Any]:
    """Every declared action by its German label, grouped by kind; each group starts with
    "<noun>." (every action of that kind: "referral." finds every referral event)."""
    declared = registry.declared()
    groups = []
    for noun in registry.nouns():
        group = str(ACTION_GROUPS.get(noun, noun))
        options = [(f"{noun}.", str(_("alle: %(group)s") % {"group": group}))]
        options += sorted(
            ((item.name, str(item.label)) for item in declared if item.name.startswith(f"{noun}.")),
            key=lambda option: option[1],
        )
        groups.append((group, options))
    return [("", str(_("alle Aktionen"))), *sorted(groups)]


class GroupedSelect(forms.Select):
    """A <select> with an <optgroup> per kind, built in Python like PlainSelect (about 200
    options: Django's per-option templates would cost milliseconds a page)."""

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]
        parts = []
        for group, options, _index in widget["optgroups"]:
            rendered = format_html_join(
                "",
                '<option value="{}"{}>{}</option>',
                ((o["value"], flatatt(o["attrs"]), o["label"]) for o in options),
            )
            parts.append(
                format_html('<optgroup label="{}">{}</optgroup>', group, rendered)
                if group
                else rendered
            )
        return format_html(
            '<select name="{}"{}>{}</select>',
            widget["name"],
            flatatt(widget["attrs"]),
            mark_safe("".join(parts)),  # noqa: S308 (each part escaped by format_html above)
        )


@dataclass(frozen=True)
class TrailFilter:
    """The checked filter: every value is an id, a label or a date (safe in the trail)."""

    actor_id: int | None = None
    agency_id: int | None = None
    family_id: str | None = None
    family_ref: str = ""
    action: str = ""
    target_type: str = ""
    target_id: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def details(self) -> dict[str, int | str | None]:
        """The filter as audit details (ids, labels and ISO dates only)."""
        values: dict[str, int | str | None] = {
            "actor": self.actor_id,
            "agency": self.agency_id,
            "family": self.family_ref or None,
            "filter_action": self.action or None,
            "target_type": self.target_type or None,
            "target_id": self.target_id or None,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
        }
        return {key: value for key, value in values.items() if value is not None}

    def family_subject(self) -> Family | None:
        """The family the filter names, as the data subject of the search's own record."""
        if self.family_id is None:
            return None
        return Family(pk=self.family_id, reference=self.family_ref)


def events_matching(trail_filter: TrailFilter, *, scope: DpoScope) -> QuerySet[AuditEvent]:
    """The events the filter selects within the DPO's SCOPE (unordered)."""
    events = scope.events(AuditEvent.objects.all())
    if trail_filter.actor_id is not None:
        events = events.filter(actor_id=trail_filter.actor_id)
    if trail_filter.agency_id is not None:
        events = events.filter(agency_id=trail_filter.agency_id)
    if trail_filter.family_id is not None:
        events = events.filter(family_id=trail_filter.family_id)
    if trail_filter.action.endswith("."):
        events = events.filter(action__startswith=trail_filter.action)
    elif trail_filter.action:
        events = events.filter(action=trail_filter.action)
    if trail_filter.target_type:
        events = events.filter(target_type=trail_filter.target_type)
    if trail_filter.target_id:
        events = events.filter(target_id=trail_filter.target_id)
    if trail_filter.date_from is not None:
        events = events.filter(occurred_at__gte=_local_midnight(trail_filter.date_from))
    if trail_filter.date_to is not None:
        # Inclusive: up to the midnight that ends the day.
        end = _local_midnight(trail_filter.date_to + timedelta(days=1))
        events = events.filter(occurred_at__lt=end)
    return events


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class TrailFilterForm(forms.Form):
    """The search form. Each field names how it is written; a value that is no id or label
    is refused with a clear message instead of finding nothing."""

    actor = forms.CharField(
        label=_("Person (E-Mail oder Nutzer-ID)"), required=False, max_length=254
    )
    agency = forms.TypedChoiceField(
        label=_("Stelle"), required=False, coerce=int, empty_value=None, widget=PlainSelect
    )
    family = forms.CharField(label=_("Familien-Kennung"), required=False, max_length=32)
    action = forms.ChoiceField(
        label=_("Aktion"),
        required=False,
        widget=GroupedSelect,
        help_text=_("Eine Aktion, oder alle einer Art (z. B. „alle: Vermittlungen“)."),
        error_messages={
            "invalid_choice": _("Diese Aktion gibt es nicht: bitte eine aus der Liste wählen.")
        },
    )
    target_type = forms.CharField(
        label=_("Objekttyp"),
        required=False,
        max_length=64,
        help_text=_("z. B. „referrals.referral“"),
    )
    target_id = forms.CharField(label=_("Objekt-ID"), required=False, max_length=64)
    date_from = forms.DateField(
        label=_("von (Tag)"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("bis (Tag, einschließlich)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, data: Mapping[str, Any] | None = None, *, scope: DpoScope) -> None:
        super().__init__(data)
        self.scope = scope
        # Only the agencies whose events she sees: another one is an invalid choice.
        agencies = scope.agencies(Agency.objects.all()).order_by("name").values_list("pk", "name")
        everything = _("alle Stellen") if scope.network_wide else _("alle Stellen Ihres Bereichs")
        self.fields["agency"].choices = [("", everything), *agencies]  # type: ignore[attr-defined]
        self.fields["action"].choices = action_choices()  # type: ignore[attr-defined]

    def clean_actor(self) -> int | None:
        text: str = self.cleaned_data["actor"].strip()
        if not text:
            return None
        if text.removeprefix("user:").isdigit():
            return int(text.removeprefix("user:"))
        pk = User.objects.filter(email=text.lower()).values_list("pk", flat=True).first()
        if pk is None:
            raise forms.ValidationError(_("Keine Person mit dieser E-Mail-Adresse."))
        return pk

    def clean_family(self) -> tuple[str, str] | None:
        reference: str = self.cleaned_data["family"].strip().upper()
        if not reference:
            return None
        found = Family.objects.filter(reference=reference).values_list("pk", "owner_id").first()
        pk = found[0] if found and self._may_name(str(found[0]), found[1]) else None
        if pk is None:
            raise forms.ValidationError(
                _("Keine Familie mit der Kennung „%(reference)s“.") % {"reference": reference}
                if LABEL.fullmatch(reference)
                else _("Keine Familie mit dieser Kennung.")
            )
        return str(pk), reference

    def _may_name(self, family_id: str, owner_id: int) -> bool:
        """Whether the DPO may filter by this family: one of her agencies owns it or acted
        on it. Any other family is answered as one that does not exist."""
        if self.scope.network_wide or owner_id in self.scope.agency_ids:
            return True
        mine = self.scope.events(AuditEvent.objects.filter(family_id=family_id))
        return mine.exists()

    def _label(self, name: str) -> str:
        text: str = self.cleaned_data[name].strip()
        if text and not LABEL.fullmatch(text):
            raise forms.ValidationError(
                _("Nur Buchstaben, Ziffern und _ . : - / sind hier möglich.")
            )
        return text

    def clean_target_type(self) -> str:
        return self._label("target_type").lower()

    def clean_target_id(self) -> str:
        return self._label("target_id")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("Das Ende des Zeitraums liegt vor seinem Anfang."))
        return cleaned

    def trail_filter(self) -> TrailFilter:
        """The checked filter; call after is_valid()."""
        data = self.cleaned_data
        family = data.get("family")
        return TrailFilter(
            actor_id=data.get("actor"),
            agency_id=data.get("agency"),
            family_id=family[0] if family else None,
            family_ref=family[1] if family else "",
            action=data.get("action", ""),
            target_type=data.get("target_type", ""),
            target_id=data.get("target_id", ""),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
        )
