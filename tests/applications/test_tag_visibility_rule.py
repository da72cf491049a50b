"""An application tag's visibility is one rule (applications.access.side_sees), asked four
ways: the look-up by code (access_tag_by_code), the side a page or thread is seen from
(tag_side), the socket's recipients (tag_readers) and, for the office's lists, in the query
(seen_by_office). With the consent covering the tag,
not covering it, revoked, or the family's processing restricted, and for every role at
the project, the processing office (the Jobcenter) and outside, the three agree with the
design: the project's case roles always see the tag, the office's while the consent
covers it and the processing is not restricted, nobody else ever."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import NamedTuple

import pytest
from django.core.cache import cache
from django.http import Http404
from django.utils import timezone

from applications import actions as application_actions
from applications.access import (
    TagRefused,
    access_tag_by_code,
    seen_by_office,
    tag_consented,
    tag_readers,
    tag_side,
)
from applications.models import ApplicationTag
from dienstweg import actions as core
from dienstweg.actions import restrict_processing
from dienstweg.models import Agency, Consent, DataCategory, Family, Membership, Purpose, User
from tests.builders import build_tag, project_dpo
from tests.conftest import Network, consent_data, make_staff, member

Role = Membership.Role
CASE_ROLES = {Role.COACH, Role.CASEWORKER, Role.LEAD}
CONDITIONS = ("covered", "not_covered", "revoked", "restricted")


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    cache.clear()  # the look-up's failure counter


def people(network: Network) -> list[tuple[User, str]]:
    """Every role at the project, at the Jobcenter and outside, with the side it sees from."""
    staff = [(network.anna, "project"), (network.ben, "office")]
    for agency, side in ((network.project, "project"), (network.jobcenter, "office")):
        for role in Role.values:
            if (agency, role) in {(network.project, Role.COACH), (network.jobcenter, "caseworker")}:
                continue  # Anna and Ben
            user = make_staff(
                f"{role}@{agency.pk}.example.org", f"{role} {agency.pk}", agency, role
            )
            staff.append((user, side if role in CASE_ROLES else "outside"))
    return [*staff, (network.dirk, "outside"), (network.dora, "outside")]


@pytest.mark.parametrize("condition", CONDITIONS)
def test_look_up_side_and_readers_agree(
    network: Network, family: Family, consent: Consent, condition: str
) -> None:
    staff = people(network)
    kind = ApplicationTag.Kind.HOUSING_BENEFIT  # housing: not in the consent
    if condition != "not_covered":
        kind = ApplicationTag.Kind.CITIZENS_BENEFIT  # household: in the consent
    tag = application_actions.tag_application(
        family,
        data=application_actions.TagData(
            kind=kind,
            processing_agency=network.jobcenter,
            submitted_on=timezone.localdate() - timedelta(days=3),
        ),
        by=network.anna,
    )
    if condition == "revoked":
        core.revoke_consent(consent, note="Widerruf am Telefon", by=network.anna)
    if condition == "restricted":
        restrict_processing(family, reason="Widerspruch der Familie", by=project_dpo(network))
    tag = ApplicationTag.objects.select_related("family", "processing_agency").get(pk=tag.pk)
    readers = tag_readers(tag)

    for user, side in staff:
        expected = side == "project" or (side == "office" and condition == "covered")
        try:
            access_tag_by_code(user, tag.code, action=None)
            opened = True
        except (Http404, TagRefused):
            opened = False
        seen = (opened, tag_side(user, tag) is not None, user.pk in readers)
        assert seen == (expected,) * 3, f"{user.email} ({side}): {seen}"
        if expected:
            assert tag_side(user, tag) == side
    in_query = seen_by_office(ApplicationTag.objects.filter(pk=tag.pk)).exists()
    assert in_query == (condition == "covered")


class Shape(NamedTuple):
    """A consent's terms, as the test below varies them (PERIOD: its first and last day,
    counted from today)."""

    recipients: list[Agency]
    purposes: list[str]
    categories: list[str]
    period: tuple[int, int] = (-30, 365)
    revoked: bool = False


def test_the_office_rule_in_the_query_is_tag_consented(network: Network, family: Family) -> None:
    """seen_by_office asks tag_consented's rule in SQL for the office's lists. For every
    kind of tag, under a consent that covers some of them with each of its terms changed
    in turn (recipients, purposes, categories, period, revocation), then under random pairs
    of consents, the two agree (on SQLite and PostgreSQL alike)."""
    core.grant_consent(
        family,
        data=consent_data(network, family, categories=list(DataCategory.values)),
        by=network.anna,
    )
    tags = [build_tag(network, family, kind=kind) for kind in ApplicationTag.Kind.values]
    covering = Shape([network.jobcenter], [Purpose.APPLICATION_SUPPORT], [DataCategory.HOUSEHOLD])
    changed = [
        covering,
        covering._replace(recipients=[network.jugendamt]),
        covering._replace(recipients=[]),
        covering._replace(purposes=[Purpose.REFERRAL]),
        covering._replace(purposes=[Purpose.REFERRAL, Purpose.APPLICATION_SUPPORT]),
        covering._replace(categories=[DataCategory.CHILDREN]),
        covering._replace(categories=[DataCategory.HOUSING]),
        covering._replace(categories=[DataCategory.IDENTITY]),
        covering._replace(categories=[DataCategory.CHILDREN, DataCategory.HOUSING]),
        *(covering._replace(period=period) for period in ((-10, -1), (1, 30), (-30, 0), (0, 0))),
        covering._replace(revoked=True),
    ]
    rng = random.Random(15)  # noqa: S311 (test data, not secrets)

    def random_shape() -> Shape:
        return Shape(
            recipients=rng.choice([[network.jobcenter], [network.jugendamt], []]),
            purposes=rng.sample(Purpose.values, rng.randint(1, 2)),
            categories=rng.sample(DataCategory.values, rng.randint(1, 3)),
            period=rng.choice([(-30, 365), (-10, -1), (1, 30), (-30, 0)]),
            revoked=rng.random() < 0.2,
        )

    rounds = [[shape] for shape in changed] + [[random_shape(), random_shape()] for _ in range(15)]
    today = timezone.localdate()
    answers = set()
    for number, shapes in enumerate(rounds):
        # Consents are never changed or deleted: the earlier rounds' are revoked.
        Consent.objects.filter(family=family, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        for shape in shapes:
            consent = Consent.objects.create(
                family=family,
                recipient_ids=[agency.pk for agency in shape.recipients],
                categories=shape.categories,
                purposes=shape.purposes,
                valid_from=today + timedelta(days=shape.period[0]),
                valid_until=today + timedelta(days=shape.period[1]),
                given_by=member(family, "Ayşe"),
                capacity=Consent.Capacity.ADULT_SELF,
                method=Consent.Method.SIGNED_FORM,
                text_version="2026-1",
                revoked_at=timezone.now() if shape.revoked else None,
            )
            consent.recipients.set(shape.recipients)
        expected = {tag.pk for tag in tags if tag_consented(tag)}
        in_query = seen_by_office(ApplicationTag.objects.filter(family=family))
        assert set(in_query.values_list("pk", flat=True)) == expected, f"round {number}"
        answers.add(len(expected))
    assert {0, 3} <= answers  # none seen, the household kinds seen (and more)
