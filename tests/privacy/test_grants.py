"""The console's grants of case and dpo roles: every confirmed grant with who proposed and
who confirmed it, marked where unusual (many grants in a day by one person, confirmed
outside working hours), and what came about past the rules. The flags come from the trail
(privacy/flags.py); events are recorded at past moments with timezone.now patched.

- Ada proposes (admin), Otto is the second admin, Clara (lead at the Jugendamt) confirms,
  Dora (DPO) reads the console."""

from __future__ import annotations

from datetime import date, datetime, time
from unittest.mock import patch
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from dienstweg import actions
from dienstweg.models import Membership, MembershipProposal, User
from privacy.flags import find_flags, is_outside_working_hours
from privacy.models import AccessFlag
from tests.conftest import PASSWORD, Network, verified_client
from tests.privacy.test_flags import recorded

BERLIN = ZoneInfo("Europe/Berlin")
WEDNESDAY = date(2026, 3, 4)
SATURDAY = date(2026, 3, 7)
URL = "/datenschutz/rollen/"
Role = Membership.Role
Kind = AccessFlag.Kind

pytestmark = pytest.mark.django_db


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=BERLIN)


@pytest.fixture
def ada(db: None) -> User:
    return User.objects.create_superuser("ada@example.org", PASSWORD, full_name="Ada Admin")


@pytest.fixture
def otto(db: None) -> User:
    return User.objects.create_superuser("otto@example.org", PASSWORD, full_name="Otto Ott")


def newcomer(n: int) -> User:
    return User.objects.create_user(f"new{n}@example.org", PASSWORD, full_name=f"Neu {n:02d}")


def granted(
    network: Network, ada: User, n: int, *, when: datetime | None = None, role: str = Role.COACH
) -> MembershipProposal:
    """Newcomer N proposed by Ada at the Jugendamt and confirmed by Clara at WHEN."""
    proposal = actions.propose_membership(
        newcomer(n), agency=network.jugendamt, role=role, by=ada, now=when
    )
    actions.confirm_proposal(proposal, by=network.clara, now=when)
    proposal.refresh_from_db()
    return proposal


def page(client: Client, url: str = URL) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


# The list


def test_lists_every_confirmed_grant_with_both_people(
    network: Network, ada: User, otto: User
) -> None:
    grant = granted(network, ada, 1, when=at(WEDNESDAY, 10, 15))
    pending = actions.propose_membership(
        newcomer(2), agency=network.jugendamt, role=Role.CASEWORKER, by=ada
    )
    refused = actions.propose_membership(
        newcomer(3), agency=network.jugendamt, role=Role.CASEWORKER, by=ada
    )
    actions.refuse_proposal(refused, by=network.clara)
    html = page(verified_client(network.dora))
    assert "Neu 01" in html and "Mi, 04.03.2026 10:15" in html
    row = html[html.index("Neu 01") : html.index("</tr>", html.index("Neu 01"))]
    assert "Ada Admin" in row and "Clara Czerny" in row
    assert "Coach" in row and network.jugendamt.name in row
    assert "Neu 02" not in html and "Neu 03" not in html  # pending and refused: no grant
    assert pending.state == MembershipProposal.State.PENDING
    assert grant.decided_by == network.clara


def test_the_page_view_is_recorded(network: Network, ada: User) -> None:
    granted(network, ada, 1)
    page(verified_client(network.dora))
    [event] = AuditEvent.objects.filter(action="console.grants_viewed")
    assert event.actor_id == network.dora.pk
    assert event.details == {"page": 1, "shown": 1}


def test_others_get_no_list(network: Network, ada: User) -> None:
    granted(network, ada, 1)
    for who in (network.clara, network.anna):
        assert verified_client(who).get(URL).status_code == 403
    assert verified_client(ada).get(URL).status_code == 403


@override_settings(AUDIT_CONSOLE_PAGE_SIZE=3)
def test_the_list_is_paginated_and_its_query_count_constant(network: Network, ada: User) -> None:
    dora = verified_client(network.dora)
    granted(network, ada, 1)
    page(dora)  # the session's first request writes its activity

    def queries(url: str = URL) -> int:
        with CaptureQueriesContext(connection) as captured:
            page(dora, url)
        return len(captured)

    one = queries()
    for n in range(2, 8):
        granted(network, ada, n)
    assert queries() == one
    assert queries(f"{URL}?page=2") == one
    # Newest first, three to a page.
    first, second = page(dora), page(dora, f"{URL}?page=2")
    assert "Neu 07" in first and "Neu 05" in first and "Neu 04" not in first
    assert "Neu 04" in second and "Neu 02" in second and 'rel="next"' in second


# Marks and flags


def test_a_confirmation_outside_working_hours_is_marked_at_once(
    network: Network, ada: User
) -> None:
    granted(network, ada, 1, when=at(WEDNESDAY, 10))
    granted(network, ada, 2, when=at(WEDNESDAY, 21, 30))
    granted(network, ada, 3, when=at(SATURDAY, 11))
    html = page(verified_client(network.dora))
    marked = [
        name
        for name in ("Neu 01", "Neu 02", "Neu 03")
        if "außerhalb der Arbeitszeit" in row(html, name)
    ]
    assert marked == ["Neu 02", "Neu 03"]


def row(html: str, name: str) -> str:
    start = html.rindex("<tr", 0, html.index(name))
    return html[start : html.index("</tr>", start)]


def test_working_hours_follow_the_settings() -> None:
    assert not is_outside_working_hours(at(WEDNESDAY, 7))
    assert not is_outside_working_hours(at(WEDNESDAY, 18, 59))
    assert is_outside_working_hours(at(WEDNESDAY, 19))
    assert is_outside_working_hours(at(WEDNESDAY, 6, 59))
    assert is_outside_working_hours(at(SATURDAY, 12))
    with override_settings(WORKING_HOURS_START=9, WORKING_HOURS_END=17):
        assert is_outside_working_hours(at(WEDNESDAY, 8))
        assert is_outside_working_hours(at(WEDNESDAY, 17, 30))


@override_settings(FLAG_GRANTS_PER_DAY=3)
def test_many_grant_steps_in_a_day_are_flagged(network: Network, ada: User, otto: User) -> None:
    # Ada proposes four (over the limit); Otto confirms three (at it).
    for n in range(4):
        recorded(ada, "membership.proposed", at(WEDNESDAY, 9, n), details={"proposal": n})
    for n in range(3):
        recorded(otto, "membership.proposal_confirmed", at(WEDNESDAY, 10, n))
    recorded(otto, "membership.granted", at(WEDNESDAY, 10, 5))  # not a step of its own
    flags = [f for f in find_flags(WEDNESDAY) if f.kind == Kind.MANY_GRANTS]
    assert [(f.actor_id, f.event_count, f.family_count) for f in flags] == [(ada.pk, 4, 0)]
    # Found again an hour later: the same flag, not a second one.
    find_flags(WEDNESDAY)
    assert AccessFlag.objects.filter(kind=Kind.MANY_GRANTS).count() == 1


def test_confirmations_outside_working_hours_are_flagged(network: Network, otto: User) -> None:
    recorded(otto, "membership.proposal_confirmed", at(WEDNESDAY, 12))
    recorded(network.clara, "membership.proposal_confirmed", at(WEDNESDAY, 22))
    recorded(network.clara, "membership.proposal_confirmed", at(WEDNESDAY, 6))
    recorded(otto, "membership.proposal_confirmed", at(SATURDAY, 12))
    recorded(network.dora, "membership.proposed", at(WEDNESDAY, 23))  # a proposal: no
    wednesday = [f for f in find_flags(WEDNESDAY) if f.kind == Kind.GRANT_OUTSIDE_HOURS]
    assert [(f.actor_id, f.event_count) for f in wednesday] == [(network.clara.pk, 2)]
    saturday = [f for f in find_flags(SATURDAY) if f.kind == Kind.GRANT_OUTSIDE_HOURS]
    assert [(f.actor_id, f.event_count) for f in saturday] == [(otto.pk, 1)]


@override_settings(FLAG_GRANTS_PER_DAY=2)
def test_the_list_marks_grants_by_a_flagged_person_and_links_the_flag(
    network: Network, ada: User
) -> None:
    with patch("django.utils.timezone.now", return_value=at(WEDNESDAY, 10)):
        for n in range(1, 3):
            granted(network, ada, n)
    find_flags(WEDNESDAY)
    # Ada proposed two and Clara confirmed two: each took two steps, at the limit.
    # A third grant puts both over it.
    assert not AccessFlag.objects.filter(kind=Kind.MANY_GRANTS).exists()
    with patch("django.utils.timezone.now", return_value=at(WEDNESDAY, 11)):
        granted(network, ada, 3)
    find_flags(WEDNESDAY)
    flags = {f.actor_id: f for f in AccessFlag.objects.filter(kind=Kind.MANY_GRANTS)}
    assert set(flags) == {ada.pk, network.clara.pk}
    html = row(page(verified_client(network.dora)), "Neu 03")
    assert "Ada Admin: 3 Vergaben an diesem Tag" in html
    assert "Clara Czerny: 3 Vergaben an diesem Tag" in html
    assert f'href="/datenschutz/auffaelligkeiten/{flags[ada.pk].pk}/"' in html


# What came about past the rules


def test_roles_no_second_person_confirmed_are_listed(network: Network, ada: User) -> None:
    granted(network, ada, 1)
    html = page(verified_client(network.dora))
    # The personas' roles were given by the platform itself (tests/conftest.py, by=None).
    assert "5 Rollen ohne Bestätigung" in html
    assert "Anna Albers – Coach" in html
    assert "Neu 01 – Coach" not in html


def test_an_operator_with_a_case_role_is_flagged(network: Network, ada: User) -> None:
    html = page(verified_client(network.dora))
    section = html[html.index("Verwaltungskonten mit") : html.index("Rollen ohne Best")]
    assert "Keine." in section
    # Past the actions, as a shell or the database owner could.
    User.objects.filter(pk=network.anna.pk).update(is_staff=True)
    html = page(verified_client(network.dora))
    section = html[html.index("Verwaltungskonten mit") : html.index("Rollen ohne Best")]
    assert "Anna Albers" in section and 'role="alert"' in section
