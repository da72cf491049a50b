"""Shared set-up of the referral tests: Anna's referral of the Yılmaz family to the
Jobcenter (made by tests/builders.py) with this package's need, summary and note, and the
checks of a step: its page's messages, the referral's audit events, "nothing changed"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from dienstweg.models import DataCategory, Family, User
from referrals.actions import steps as referral_steps
from referrals.models import Referral, ReferralGroupPermission
from tests.builders import build_referral
from tests.conftest import YILMAZ, Network

NAMES = sorted({name for m in YILMAZ for name in (m.first_name, m.last_name)})
NEED = "Arbeitsvermittlung in Teilzeit"
SUMMARY = "Frau Y. sucht vormittags Arbeit, sobald die Betreuung geklärt ist."
EMPLOYMENT_NOTE = "Ausbildung als Friseurin, sucht 20 Stunden vormittags"
OUTCOME = "Vermittelt in eine Teilzeitstelle ab dem ersten März"
REASON = "Wohnort liegt außerhalb unseres Bezirks"
CHILD_PROTECTION_REASON = "Emre kam dreimal mit Verletzungen in die Kita"


def refer(network: Network, family: Family, **changes: Any) -> Referral:
    """Anna's referral to the Jobcenter (identity and employment, with EMPLOYMENT_NOTE),
    sent; CHANGES as build_referral takes them."""
    values: dict[str, Any] = {
        "need": NEED,
        "summary": SUMMARY,
        "notes": {DataCategory.EMPLOYMENT: EMPLOYMENT_NOTE},
    }
    values.update(changes)
    return build_referral(network, family, **values)


def child_protection(network: Network, family: Family, *, by: User) -> Referral:
    """Submitted for approval: on a legal basis, "send" means "submit"."""
    return refer(
        network,
        family,
        by=by,
        to=network.jugendamt,
        basis=Referral.Basis.CHILD_PROTECTION,
        basis_reason=CHILD_PROTECTION_REASON,
        categories=[DataCategory.IDENTITY, DataCategory.CHILDREN],
        notes={DataCategory.CHILDREN: "Hämatome am Arm, Kita hat dokumentiert"},
    )


def assigned(network: Network, family: Family, jana: User) -> Referral:
    referral = refer(network, family)
    return referral_steps.assign_referral(referral, assignee=network.ben, by=jana)


def referral_audit(*actions_: str) -> list[AuditEvent]:
    events = AuditEvent.objects.filter(action__startswith="referral.").order_by("id")
    if actions_:
        events = events.filter(action__in=actions_)
    return list(events)


def receiver_can_view(user: User, referral: Referral) -> bool:
    return ReferralGroupPermission.objects.filter(
        content_object=referral, group__user=user, permission__codename="view_referral"
    ).exists()


def detail(referral: Referral) -> str:
    return reverse("referral_detail", args=[referral.pk])


def step(client: Client, name: str, referral: Referral, **data: Any) -> list[str]:
    """POST one step of the referral's page and return the messages shown afterwards (a
    step with a typed note says why it was refused beside the note, which it keeps)."""
    response = client.post(reverse(name, args=[referral.pk]), data, follow=True)
    assert response.status_code == 200
    kept = response.context.get("kept") or {}
    if kept:
        assert kept["note"] == data.get("note", "")
    return [str(message) for message in response.context["messages"]] + (
        [kept["error"]] if kept else []
    )


def written(referral: Referral) -> int:
    """The referral's audit events of writes (opening its page records a read, a refused
    step records the refusal)."""
    return (
        AuditEvent.objects.filter(target_id=str(referral.pk), action__startswith="referral.")
        .exclude(action__in=["referral.viewed", "referral.step_refused"])
        .count()
    )


def unchanged(referral: Referral) -> Callable[[], None]:
    """Call the result after a refused step: state, timeline and trail are as before."""
    referral.refresh_from_db()
    before = (referral.state, referral.updated_at, referral.events.count(), written(referral))

    def check() -> None:
        referral.refresh_from_db()
        after = (
            referral.state,
            referral.updated_at,
            referral.events.count(),
            written(referral),
        )
        assert after == before

    return check
