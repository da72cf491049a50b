"""An application tag's visibility is one rule (applications.access.side_sees), asked three
ways: the look-up by code (access_tag_by_code), the side a page or thread is seen from
(tag_side) and the socket's recipients (tag_readers). With the consent covering the tag,
not covering it, revoked, or the family's processing restricted, and for every role at
the project, the processing office (the Jobcenter) and outside, the three agree with the
design: the project's case roles always see the tag, the office's while the consent
covers it and the processing is not restricted, nobody else ever."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.http import Http404
from django.utils import timezone

from applications import actions as application_actions
from applications.access import TagRefused, access_tag_by_code, tag_readers, tag_side
from applications.models import ApplicationTag
from dienstweg import actions as core
from dienstweg.actions import restrict_processing
from dienstweg.models import Consent, Family, Membership, User
from tests.builders import project_dpo
from tests.conftest import Network, make_staff

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
