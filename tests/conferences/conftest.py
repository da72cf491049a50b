"""The conference tests' persona and data beyond tests/conftest.py: Ayşe Yılmaz consents to
case coordination with the Jobcenter and the Jugendamt (identity, household, employment);
Anna convenes a Familienkonferenz with Ben (Jobcenter) and Clara (Jugendamt). Dirk's agency,
the Amt für Migration, is not covered: he is the outsider. Jonas, a second caseworker of
the Jobcenter, is covered by the consent but not invited."""

from __future__ import annotations

import pytest

from conferences import actions
from conferences.models import Conference
from dienstweg import actions as core
from dienstweg.models import Consent, Family, Membership, Purpose, User
from tests.builders import conference_data
from tests.conftest import Network, consent_data, make_staff


@pytest.fixture
def coordination(network: Network, family: Family) -> Consent:
    return core.grant_consent(
        family,
        data=consent_data(
            network,
            family,
            recipients=[network.jobcenter, network.jugendamt],
            purposes=[Purpose.CASE_COORDINATION],
        ),
        by=network.anna,
    )


@pytest.fixture
def jonas(network: Network) -> User:
    """A caseworker of the Jobcenter whom nobody invited."""
    return make_staff(
        "jonas@example.org", "Jonas Jung", network.jobcenter, Membership.Role.CASEWORKER
    )


@pytest.fixture
def conference(network: Network, family: Family, coordination: Consent) -> Conference:
    return actions.convene_conference(
        family, data=conference_data([network.ben, network.clara]), by=network.anna
    )
