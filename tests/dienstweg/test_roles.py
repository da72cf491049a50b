"""The one shape of role questions (dienstweg.access): roles_of, holds_role, agency_ids_of,
agencies_where and memberships_holding answer alike, with and without a query."""

from __future__ import annotations

from dienstweg.access import (
    CASE_ROLES,
    DPO_ROLES,
    agencies_where,
    agency_ids_of,
    holds_role,
    is_dpo,
    memberships_holding,
    roles_of,
)
from dienstweg.models import Membership
from tests.conftest import Network

Role = Membership.Role


def test_roles_of_names_every_agency_and_role(network: Network) -> None:
    assert roles_of(network.anna) == {(network.project.pk, Role.COACH)}
    assert roles_of(network.anna, agencies=[network.jobcenter.pk]) == frozenset()


def test_holds_role_answers_the_same_from_the_user_and_from_her_roles(network: Network) -> None:
    for user in (network.anna, network.ben, network.dirk, network.dora):
        roles = roles_of(user)
        for agency in (None, network.project, network.project.pk, network.jugendamt.pk):
            for wanted in (CASE_ROLES, DPO_ROLES, (Role.COACH,)):
                assert holds_role(user, *wanted, agency=agency) == holds_role(
                    roles, *wanted, agency=agency
                ), (user, agency, wanted)


def test_the_outsider_holds_no_role_at_the_project(network: Network) -> None:
    assert not holds_role(network.dirk, *CASE_ROLES, agency=network.project)
    assert holds_role(network.dirk, *CASE_ROLES)
    assert agency_ids_of(network.dirk) == [network.migration.pk]


def test_the_dpo_holds_no_case_role(network: Network) -> None:
    assert is_dpo(network.dora)
    assert is_dpo(network.dora, agency=network.jugendamt)
    assert not is_dpo(network.dora, agency=network.project)
    assert not holds_role(network.dora, *CASE_ROLES)
    assert agency_ids_of(network.dora) == []
    assert list(agencies_where(network.dora, *DPO_ROLES)) == [network.jugendamt]
    assert memberships_holding(network.dora, *DPO_ROLES).get().agency == network.jugendamt
