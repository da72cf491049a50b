"""The threads beside a conversation (messaging.access.recent_threads_of, compiled once a
day) are the thread list's first rows: the same rule, the same order, the same unread
counts and names; a thread whose referral the reader lost is in neither. The navigation's
unread badge and the start page's unread threads (unread_in_reach, unread_threads_of,
compiled too) count and show what the list shows unread."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import F

from dienstweg import actions as core
from dienstweg.access import reach_of
from dienstweg.actions import MemberData
from dienstweg.models import Consent, DataCategory, Family
from messaging import actions
from messaging.access import (
    recent_threads_of,
    threads_of,
    unread_in_reach,
    unread_threads_of,
)
from messaging.people import with_partners
from tests.builders import build_referral, build_referral_thread, post_messages
from tests.conftest import Network, consent_data, verified_client


def as_listed(rows: Any) -> list[tuple[Any, ...]]:
    return [
        (
            row.thread.pk,
            row.thread.kind,
            row.thread.family.reference if row.thread.family else None,
            row.unread,
            row.partner_name,
            row.partner_agency,
        )
        for row in rows
    ]


def unread_listed(user: Any) -> list[tuple[Any, ...]]:
    """The thread list's rows with something unread, in its order."""
    return as_listed(with_partners(threads_of(user)).filter(thread__last_seq__gt=F("read_seq")))


def test_the_threads_beside_are_the_thread_lists_first_rows(
    network: Network, family: Family, consent: Consent
) -> None:
    ben = network.ben
    kept = build_referral_thread(
        build_referral(network, family), messages=["Hallo"], by=network.anna
    )
    other_family = core.register_family(
        owner=network.project,
        members=[MemberData("adult", "Ayşe", "Bondarenko", date(1990, 5, 1))],
        address="",
        phone="",
        notes="",
        by=network.anna,
    )
    other_consent = core.grant_consent(
        other_family, data=consent_data(network, other_family), by=network.anna
    )
    lost = build_referral_thread(
        build_referral(network, other_family, categories=[DataCategory.IDENTITY]),
        messages=["Eins", "Zwei"],
        by=network.anna,
    )
    direct = actions.open_direct_thread(network.anna, by=ben)
    post_messages(direct, ["Kurze Frage"], by=network.anna)
    before = as_listed(recent_threads_of(ben, reach_of(ben)))
    assert {row[0] for row in before} == {kept.pk, lost.pk, direct.pk}
    assert unread_in_reach(ben) == 1 + 2 + 1
    assert as_listed(unread_threads_of(ben, reach_of(ben))) == unread_listed(ben)

    core.revoke_consent(other_consent, note="", by=network.anna)  # Ben's side loses it
    beside = as_listed(recent_threads_of(ben, reach_of(ben)))
    listed = as_listed(with_partners(threads_of(ben))[:20])
    assert beside == listed
    assert [row[0] for row in beside] == [direct.pk, kept.pk]  # newest first
    assert beside[0][3:] == (1, "Anna Albers", network.project.name)
    assert beside[1][2:4] == (family.reference, 1)
    assert unread_in_reach(ben) == 1 + 1  # the lost thread's two count for nothing
    assert as_listed(unread_threads_of(ben, reach_of(ben))) == unread_listed(ben)
    actions.mark_read(direct, seq=1, by=ben)
    assert unread_in_reach(ben) == 1
    assert [row[0] for row in as_listed(unread_threads_of(ben, reach_of(ben)))] == [kept.pk]

    page = verified_client(ben).get(f"/nachrichten/{kept.pk}/").content.decode()
    assert f'href="/nachrichten/{direct.pk}/"' in page
    assert f'href="/nachrichten/{kept.pk}/" aria-current="page"' in page
    assert f"/nachrichten/{lost.pk}/" not in page


def test_a_user_without_a_case_role_still_sees_her_direct_threads(network: Network) -> None:
    dora = network.dora  # the Jugendamt's data-protection officer: no case role anywhere
    assert reach_of(dora).agency_ids == []
    direct = actions.open_direct_thread(dora, by=network.anna)
    post_messages(direct, ["Eine Frage zum Datenschutz"], by=network.anna)
    assert [row.thread.pk for row in recent_threads_of(dora, reach_of(dora))] == [direct.pk]
    assert unread_in_reach(dora) == 1
