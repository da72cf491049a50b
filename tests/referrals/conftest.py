"""The referral tests' personas beyond tests/conftest.py: Jana, lead at the Jobcenter (told
of incoming referrals, assigns them), and Lena, a second lead of the project (approves or
refuses referrals on a legal basis)."""

from __future__ import annotations

import pytest

from dienstweg.models import Membership, User
from tests.conftest import Network, make_staff


@pytest.fixture
def jana(network: Network) -> User:
    """Lead at the Jobcenter: told of incoming referrals, assigns them."""
    return make_staff("jana@example.org", "Jana Jansen", network.jobcenter, Membership.Role.LEAD)


@pytest.fixture
def lena(network: Network) -> User:
    """A second lead of the project: approves (or refuses) referrals on a legal basis."""
    return make_staff("lena@example.org", "Lena Lange", network.project, Membership.Role.LEAD)
