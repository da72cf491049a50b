"""The one shape of role questions (dienstweg.access): roles_of, holds_role, agency_ids_of,
agencies_where and memberships_holding answer alike, with and without a query."""

from __future__ import annotations

from dienstweg import actions
from dienstweg.access import (
    CASE_ROLES,
    DPO_ROLES,
    agencies_where,
    agency_ids_of,
    dpo_scope_of,
    holds_role,
    is_dpo,
    memberships_holding,
    roles_of,
)
from dienstweg.models import Membership
from tests.conftest import Network, make_staff

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


def test_the_networks_dpo_is_a_dpo_without_a_case_role(network: Network) -> None:
    vera = make_staff("vera@example.org", "Vera Vogt", network.jobcenter, Role.NETWORK_DPO)
    assert Role.NETWORK_DPO in DPO_ROLES
    assert is_dpo(vera) and is_dpo(vera, agency=network.jobcenter)
    assert not holds_role(vera, *CASE_ROLES)
    assert agency_ids_of(vera) == []


def test_dpo_scope_of_reads_every_dpo_role_in_one_query(
    network: Network, django_assert_num_queries
) -> None:
    make_staff("pia@example.org", "Pia Pohl", network.project, Role.DPO)
    actions.add_membership(network.dora, agency=network.project, role=Role.DPO, by=None)
    with django_assert_num_queries(1):
        scope = dpo_scope_of(network.dora)
    assert scope is not None and not scope.network_wide
    assert scope.agency_ids == {network.jugendamt.pk, network.project.pk}
    assert scope.agency_names == tuple(sorted([network.jugendamt.name, network.project.name]))
    assert scope.acting_agency_id == min(network.jugendamt.pk, network.project.pk)
    assert scope.covers_agency(network.project.pk) and not scope.covers_agency(None)
    assert not scope.covers_agency(network.jobcenter.pk)
    assert dpo_scope_of(network.anna) is None


def test_the_networks_dpo_scope_covers_everything(network: Network) -> None:
    vera = make_staff("vera@example.org", "Vera Vogt", network.jobcenter, Role.NETWORK_DPO)
    scope = dpo_scope_of(vera)
    assert scope is not None and scope.network_wide
    assert scope.covers_agency(network.project.pk) and scope.covers_agency(None)
    assert scope.agency_ids == {network.jobcenter.pk}
