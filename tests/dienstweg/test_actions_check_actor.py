"""The core's actions check their own actor: called directly (by a command, a consumer, a
future view), they refuse whoever the page would refuse, write nothing, and audit the
refusal where a refused access is audited."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from dienstweg import actions
from dienstweg.models import Consent, DataKey, Evidence, Family, HouseholdMember, Membership, User
from tests.conftest import YILMAZ, Network, consent_data, make_staff
from tests.dienstweg.test_consent import PDF

# Who must be refused a case write on the project's family: Dirk (an unrelated agency),
# Dora (the DPO: she answers requests about families but keeps no case), a DPO and an
# admin of the owning project itself (a membership there without a case role).
REFUSED = ["dirk", "dora", "project_dpo", "project_admin"]


@pytest.fixture
def outsiders(network: Network) -> dict[str, User]:
    return {
        "dirk": network.dirk,
        "dora": network.dora,
        "project_dpo": make_staff(
            "pia@example.org", "Pia Pohl", network.project, Membership.Role.DPO
        ),
        "project_admin": make_staff(
            "olaf@example.org", "Olaf Ott", network.project, Membership.Role.ADMIN
        ),
    }


def register(network: Network, by: User) -> Family:
    return actions.register_family(
        owner=network.project,
        members=YILMAZ,
        address="Horster Straße 30, 45964 Gladbeck",
        phone="02043 123456",
        notes="",
        by=by,
    )


def refusals(family: Family) -> int:
    return AuditEvent.objects.filter(
        action="family.access_denied", family_id=str(family.pk)
    ).count()


@pytest.mark.parametrize("who", REFUSED)
def test_register_family_refuses_who_holds_no_registering_role(network, outsiders, who):
    with pytest.raises(actions.NotAllowed):
        register(network, outsiders[who])
    assert not Family.objects.exists()
    assert not HouseholdMember.objects.exists()
    assert not AuditEvent.objects.filter(action="family.registered").exists()


def test_register_family_refuses_a_caseworker_of_the_project(network):
    # Caseworkers of a project work on families; registering is for coaches and leads.
    carla = make_staff("carla@example.org", "Carla Cordes", network.project, "caseworker")
    with pytest.raises(actions.NotAllowed):
        register(network, carla)
    assert not Family.objects.exists()


def test_register_family_refuses_a_lead_of_an_agency_that_is_no_project(network):
    with pytest.raises(actions.NotAllowed):
        actions.register_family(
            owner=network.jugendamt,
            members=YILMAZ,
            address="",
            phone="",
            notes="",
            by=network.clara,
        )
    assert not Family.objects.exists()


def test_register_family_lets_the_projects_coach_register(network):
    assert register(network, network.anna).owner == network.project


@pytest.mark.parametrize("who", [*REFUSED, "ben"])
def test_change_family_refuses_and_records_the_refusal(network, family, outsiders, who):
    by = network.ben if who == "ben" else outsiders[who]
    leyla = next(m for m in family.members.all() if m.decrypt_field("first_name") == "Leyla")
    with pytest.raises(actions.NotAllowed):
        actions.change_family(family, address="Anderswo 1", removed_members=[str(leyla.pk)], by=by)
    family.refresh_from_db()
    assert family.decrypt_field("address") == "Horster Straße 30, 45964 Gladbeck"
    assert HouseholdMember.objects.filter(family=family).count() == 3
    assert not AuditEvent.objects.filter(action="family.changed").exists()
    assert refusals(family) == 1


def test_change_family_lets_the_projects_coach_change_it(network, family):
    changes = actions.change_family(family, phone="0157 9990001", by=network.anna)
    assert changes == {"phone": True}


@pytest.mark.parametrize("who", REFUSED)
def test_grant_consent_refuses_and_records_the_refusal(network, family, outsiders, who):
    data = consent_data(network, family, method=Consent.Method.SIGNED_FORM, evidence=PDF)
    with pytest.raises(actions.NotAllowed):
        actions.grant_consent(family, data=data, by=outsiders[who])
    assert not Consent.objects.exists()
    assert not Evidence.objects.exists()
    assert not AuditEvent.objects.filter(action="consent.granted").exists()
    assert refusals(family) == 1
    assert AuditEvent.objects.get(action="family.access_denied").actor_id == outsiders[who].pk


def test_grant_consent_refuses_the_caseworker_the_consent_names(network, family):
    # Ben's Jobcenter is a recipient: that lets him see referrals, not write the record.
    with pytest.raises(actions.NotAllowed):
        actions.grant_consent(family, data=consent_data(network, family), by=network.ben)
    assert not Consent.objects.exists()


@pytest.mark.parametrize("who", REFUSED)
def test_revoke_consent_refuses_and_records_the_refusal(network, consent, outsiders, who):
    with pytest.raises(actions.NotAllowed):
        actions.revoke_consent(consent, note="Widerruf", by=outsiders[who])
    consent.refresh_from_db()
    assert consent.revoked_at is None
    assert consent.revoked_by is None
    assert not AuditEvent.objects.filter(action="consent.revoked").exists()
    assert refusals(consent.family) == 1


def test_revoke_consent_lets_the_projects_coach_revoke(network, consent):
    assert actions.revoke_consent(consent, note="", by=network.anna).revoked_at is not None


@pytest.mark.parametrize("who", ["anna", "ben", "clara", "project_admin"])
def test_restriction_is_for_the_dpo_only(network, family, outsiders, who):
    by = outsiders.get(who) or getattr(network, who)
    with pytest.raises(actions.NotAllowed):
        actions.restrict_processing(family, reason="Art. 18 Abs. 1 lit. a", by=by)
    family.refresh_from_db()
    assert family.restricted_at is None
    assert not AuditEvent.objects.filter(action="family.processing_restricted").exists()


def test_lifting_a_restriction_is_for_the_dpo_only(network, family, outsiders):
    actions.restrict_processing(family, reason="Art. 18 Abs. 1 lit. a", by=outsiders["project_dpo"])
    with pytest.raises(actions.NotAllowed):
        actions.lift_restriction(family, by=network.anna)
    family.refresh_from_db()
    assert family.restricted_at is not None


def test_a_dpo_acts_only_for_her_own_agency(network, family):
    with pytest.raises(actions.NotAllowed):
        actions.restrict_processing(
            family, reason="Art. 18", by=network.dora, agency_id=network.jobcenter.pk
        )
    family.refresh_from_db()
    assert family.restricted_at is None


def test_a_dpo_of_another_agency_may_not_restrict_the_family_and_is_audited(network, family):
    # Dora is DPO of the Jugendamt; the family is the project's (its controller's DPO: Pia).
    with pytest.raises(actions.NotAllowed):
        actions.restrict_processing(family, reason="Art. 18", by=network.dora)
    family.refresh_from_db()
    assert family.restricted_at is None
    assert not AuditEvent.objects.filter(action="family.processing_restricted").exists()
    [refusal] = AuditEvent.objects.filter(action="family.access_denied")
    assert (refusal.actor_id, refusal.family_id) == (network.dora.pk, str(family.pk))


def test_a_dpo_of_another_agency_may_not_lift_the_restriction(network, family, outsiders):
    actions.restrict_processing(family, reason="Art. 18", by=outsiders["project_dpo"])
    with pytest.raises(actions.NotAllowed):
        actions.lift_restriction(family, by=network.dora)
    family.refresh_from_db()
    assert family.restricted_at is not None


def test_the_networks_dpo_may_restrict_any_family(network, family):
    vera = make_staff("vera@example.org", "Vera Vogt", network.jobcenter, "network_dpo")
    actions.restrict_processing(family, reason="Art. 18", by=vera)
    family.refresh_from_db()
    assert family.restricted_by == vera


@pytest.mark.parametrize("step", ["erase_family_key", "erase_family_record"])
def test_erasing_is_refused_to_a_dpo_of_another_agency(network, family, step):
    with pytest.raises(actions.NotAllowed):
        getattr(actions, step)(family, by=network.dora, reason="Art. 17")
    family.refresh_from_db()
    assert family.data_key_id is not None and family.erased_at is None


@pytest.mark.parametrize("step", ["erase_family_key", "erase_family_record"])
def test_erasing_a_family_is_for_the_dpo_or_a_command(network, family, step):
    with pytest.raises(actions.NotAllowed):
        getattr(actions, step)(family, by=network.anna, reason="Art. 17")
    family.refresh_from_db()
    assert family.data_key_id is not None
    assert family.erased_at is None
    assert DataKey.objects.filter(pk=family.data_key_id).exists()
    # A command names itself; it may.
    getattr(actions, step)(family, by="apply_retention", reason="Art. 17")
