"""Forms posted with altered or extra fields, as a user with the browser's developer tools
could: an owner, a receiving agency, an assignee, a role or an agency the user may not
use, or ids of other objects, are refused and nothing is stored; fields a form does not
have are ignored (the stored row holds what the server decided, never what was posted).

Who may do what here: Anna (coach at the project) registers and refers the Yılmaz family
and tags its applications; the family's consent names the Jobcenter and the Jugendamt;
Clara (lead at the Jugendamt) assigns its referrals to Lea (caseworker there); Ben
(Jobcenter), Dirk (unrelated agency) and Dora (the Jugendamt's DPO) may not be assigned
there; Ada and Otto are admins."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from django.test import Client

from applications.models import ApplicationTag
from audit.models import AuditEvent
from dienstweg import actions as core
from dienstweg.models import (
    Consent,
    DataCategory,
    Family,
    Membership,
    MembershipProposal,
    User,
)
from referrals.models import Referral
from tests.builders import build_referral, build_tag
from tests.config.test_csrf import snapshot
from tests.conftest import PASSWORD, Network, consent_data, make_staff, verified_client

Role = Membership.Role
# The trail may grow by a refusal's own event, nothing else.
REFUSALS = {
    "family.access_denied",
    "referral.access_denied",
    "referral.step_refused",
    "application_tag.step_refused",
}


@pytest.fixture
def shared(network: Network, family: Family) -> Consent:
    return core.grant_consent(
        family,
        data=consent_data(network, family, recipients=[network.jobcenter, network.jugendamt]),
        by=network.anna,
    )


@pytest.fixture
def lea(network: Network) -> User:
    return make_staff("lea@example.org", "Lea Lang", network.jugendamt, Role.CASEWORKER)


@pytest.fixture
def ada(db: None) -> User:
    return User.objects.create_superuser("ada@example.org", PASSWORD, full_name="Ada Admin")


@pytest.fixture
def other_family(network: Network) -> Family:
    """A family of another project: nobody here works on it."""
    other = core.create_agency(name="Anderes Projekt", kind="project", rechtskreis="other")
    coach = make_staff("olga@example.org", "Olga Ort", other, Role.COACH)
    return core.register_family(
        owner=other,
        members=[core.MemberData("adult", "Olga", "Fremd", date(1990, 1, 1))],
        address="Anderswo 1",
        phone="",
        notes="",
        by=coach,
    )


def refused_and_nothing_stored(post: Any, *, shown: frozenset[str] = frozenset()) -> Any:
    """Run POST; no table changes and the trail grows by refusals only (and by SHOWN: the
    reading of a page that comes back with the refused form and the record it belongs to)."""
    before, last_event = snapshot(), AuditEvent.objects.order_by("-id").values("id").first()
    response = post()
    after = snapshot()
    changed = {table for table in before if before[table] != after[table]}
    assert changed <= {"audit_auditevent"}, changed
    new = AuditEvent.objects.filter(id__gt=last_event["id"] if last_event else 0)
    assert set(new.values_list("action", flat=True)) <= REFUSALS | shown
    return response


# Family registration


def registration(owner: int, **extra: str) -> dict[str, str]:
    data = {
        "members-TOTAL_FORMS": "1",
        "members-INITIAL_FORMS": "0",
        "members-MIN_NUM_FORMS": "1",
        "members-MAX_NUM_FORMS": "15",
        "members-0-kind": "adult",
        "members-0-first_name": "Murat",
        "members-0-last_name": "Kaya",
        "members-0-birth_date": "1979-06-30",
        "owner": str(owner),
        "address": "Hochstraße 1, 45964 Gladbeck",
        "phone": "",
        "notes": "",
    }
    data.update(extra)
    return data


def test_registering_for_an_agency_one_does_not_work_for_is_refused(
    network: Network, anna_client: Client, other_family: Family
) -> None:
    for owner in (network.jobcenter.pk, network.jugendamt.pk, other_family.owner_id, 999_999):
        response = refused_and_nothing_stored(
            lambda owner=owner: anna_client.post("/familien/neu/", registration(owner))
        )
        assert response.status_code == 200  # the form again, with its error
        assert response.context["form"].errors["owner"]


def test_extra_fields_of_a_registration_are_ignored(
    network: Network, anna_client: Client, other_family: Family
) -> None:
    response = anna_client.post(
        "/familien/neu/",
        registration(
            network.project.pk,
            id=str(other_family.pk),
            reference="FAM-GEKAPERT",
            registered_by=str(network.ben.pk),
            registered_at="2000-01-01T00:00",
            erased_at="2000-01-01T00:00",
            restricted_at="2000-01-01T00:00",
            data_key=str(other_family.data_key_id),
            owner_id=str(network.jobcenter.pk),
        ),
    )
    assert response.status_code == 302
    family = Family.objects.exclude(pk=other_family.pk).get(registered_by=network.anna)
    assert family.owner == network.project
    assert family.reference != "FAM-GEKAPERT" and not family.is_erased
    assert family.restricted_at is None and family.data_key_id != other_family.data_key_id
    assert Family.objects.get(pk=other_family.pk).owner_id == other_family.owner_id


# Referral creation


def referral_form(to: int, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "to_agency": str(to),
        "need": "Arbeitsvermittlung",
        "summary": "Sucht Teilzeit",
        "categories": [DataCategory.IDENTITY, DataCategory.EMPLOYMENT],
        "note_employment": "20 Stunden",
    }
    data.update(extra)
    return data


@pytest.mark.parametrize(
    "tampered",
    [
        {"to": "migration"},  # not named in the consent
        {"to": "project"},  # the family's own project
        {"to": "nowhere"},
        {"categories": [DataCategory.IDENTITY, DataCategory.HEALTH]},  # not consented
        {"categories": ["nonsense"]},
    ],
)
def test_a_referral_to_an_agency_or_of_data_the_consent_does_not_cover_is_refused(
    network: Network, family: Family, shared: Consent, anna_client: Client, tampered: dict
) -> None:
    agencies = {
        "migration": network.migration.pk,
        "project": network.project.pk,
        "nowhere": 999_999,
    }
    to = agencies.get(tampered.get("to", ""), network.jobcenter.pk)
    extra = {"categories": tampered["categories"]} if "categories" in tampered else {}
    response = refused_and_nothing_stored(
        lambda: anna_client.post(f"/familien/{family.pk}/vermitteln/", referral_form(to, **extra))
    )
    assert response.status_code == 200 and response.context["form"].errors
    assert not Referral.objects.exists()


def test_a_referral_of_another_projects_family_is_refused(
    network: Network, other_family: Family, anna_client: Client
) -> None:
    response = refused_and_nothing_stored(
        lambda: anna_client.post(
            f"/familien/{other_family.pk}/vermitteln/", referral_form(network.jobcenter.pk)
        )
    )
    assert response.status_code == 404


def test_extra_fields_of_a_referral_are_ignored(
    network: Network, family: Family, shared: Consent, anna_client: Client, other_family: Family
) -> None:
    response = anna_client.post(
        f"/familien/{family.pk}/vermitteln/",
        referral_form(
            network.jobcenter.pk,
            from_agency=str(network.jugendamt.pk),
            family=str(other_family.pk),
            state=Referral.State.ACCEPTED,
            assignee=str(network.ben.pk),
            created_by=str(network.ben.pk),
            dpo_review="on",
            access_until="2099-12-31",
            basis=Referral.Basis.CHILD_PROTECTION,
        ),
    )
    assert response.status_code == 302
    referral = Referral.objects.get()
    assert (referral.family_id, referral.from_agency, referral.to_agency) == (
        family.pk,
        network.project,
        network.jobcenter,
    )
    assert (referral.state, referral.assignee, referral.created_by) == (
        Referral.State.SENT,
        None,
        network.anna,
    )
    assert (referral.basis, referral.dpo_review) == (Referral.Basis.CONSENT, False)
    assert referral.access_until == shared.valid_until


# Assignment


@pytest.fixture
def to_jugendamt(network: Network, family: Family, shared: Consent) -> Referral:
    return build_referral(network, family, to=network.jugendamt)


@pytest.mark.parametrize("who", ["ben", "dirk", "dora", "anna", "inactive", "unknown"])
def test_assigning_to_someone_outside_the_receiving_agency_is_refused(
    network: Network, to_jugendamt: Referral, lea: User, who: str
) -> None:
    inactive = make_staff("ines@example.org", "Ines Inaktiv", network.jugendamt, Role.CASEWORKER)
    User.objects.filter(pk=inactive.pk).update(is_active=False)
    people = {"ben": network.ben, "dirk": network.dirk, "dora": network.dora, "anna": network.anna}
    assignee = people[who].pk if who in people else inactive.pk if who == "inactive" else 999_999
    clara = verified_client(network.clara)
    response = refused_and_nothing_stored(
        lambda: clara.post(
            f"/vermittlungen/{to_jugendamt.pk}/zuweisen/",
            {"assignee": str(assignee), "to_agency": str(network.jobcenter.pk)},
        )
    )
    assert response.status_code == 302
    to_jugendamt.refresh_from_db()
    assert to_jugendamt.assignee is None
    # The control: a caseworker of the Jugendamt is assigned, and nothing else moves.
    clara.post(
        f"/vermittlungen/{to_jugendamt.pk}/zuweisen/",
        {"assignee": str(lea.pk), "to_agency": str(network.jobcenter.pk), "state": "accepted"},
    )
    to_jugendamt.refresh_from_db()
    assert (to_jugendamt.assignee, to_jugendamt.to_agency) == (lea, network.jugendamt)
    assert to_jugendamt.state == Referral.State.SENT


def test_a_lead_cannot_assign_a_referral_of_another_agency(
    network: Network, family: Family, shared: Consent, lea: User
) -> None:
    to_jobcenter = build_referral(network, family, to=network.jobcenter)
    clara = verified_client(network.clara)
    response = refused_and_nothing_stored(
        lambda: clara.post(f"/vermittlungen/{to_jobcenter.pk}/zuweisen/", {"assignee": str(lea.pk)})
    )
    assert response.status_code == 404


# Role proposals and memberships (the admin)

PROPOSALS = "/admin/dienstweg/membershipproposal/add/"


@pytest.mark.parametrize("role", [Role.ADMIN, "superuser", "owner", ""])
def test_proposing_a_role_that_takes_no_proposal_or_does_not_exist_is_refused(
    network: Network, ada: User, role: str
) -> None:
    pia = core.create_staff("pia@example.org", full_name="Pia Pohl", password=PASSWORD)
    client = verified_client(ada)
    response = refused_and_nothing_stored(
        lambda: client.post(
            PROPOSALS, {"user": pia.pk, "agency": network.jugendamt.pk, "role": role}
        )
    )
    assert response.status_code == 200 and response.context["adminform"].form.errors


def test_extra_fields_of_a_proposal_are_ignored(network: Network, ada: User) -> None:
    pia = core.create_staff("pia@example.org", full_name="Pia Pohl", password=PASSWORD)
    otto = User.objects.create_superuser("otto@example.org", PASSWORD, full_name="Otto Ott")
    response = verified_client(ada).post(
        PROPOSALS,
        {
            "user": pia.pk,
            "agency": network.jugendamt.pk,
            "role": Role.CASEWORKER,
            "state": MembershipProposal.State.CONFIRMED,
            "decided_by": otto.pk,
            "proposed_by": otto.pk,
            "decided_at": "2000-01-01T00:00",
            "proposed_at": "2000-01-01T00:00",
        },
    )
    assert response.status_code == 302
    proposal = MembershipProposal.objects.get()
    assert (proposal.state, proposal.proposed_by, proposal.decided_by) == (
        MembershipProposal.State.PENDING,
        ada,
        None,
    )
    assert proposal.decided_at is None and proposal.proposed_at.year > 2000
    assert not Membership.objects.filter(user=pia).exists()


def test_a_lead_cannot_decide_a_proposal_of_another_agency(network: Network, ada: User) -> None:
    pia = core.create_staff("pia@example.org", full_name="Pia Pohl", password=PASSWORD)
    proposal = core.propose_membership(pia, agency=network.jobcenter, role=Role.LEAD, by=ada)
    clara = verified_client(network.clara)
    for verb in ("bestaetigen", "ablehnen"):
        response = refused_and_nothing_stored(
            lambda verb=verb: clara.post(f"/rollen/{proposal.pk}/{verb}/", {"agency": "1"})
        )
        assert response.status_code == 404


def test_a_membership_keeps_its_person_and_agency_and_a_raise_is_refused(
    network: Network, ada: User
) -> None:
    membership = Membership.objects.get(user=network.ben)
    client = verified_client(ada)
    url = f"/admin/dienstweg/membership/{membership.pk}/change/"
    # User and agency are read-only on the change form: posted values are ignored ...
    response = client.post(
        url, {"user": network.dirk.pk, "agency": network.jugendamt.pk, "role": Role.CASEWORKER}
    )
    assert response.status_code == 302
    membership.refresh_from_db()
    assert (membership.user, membership.agency) == (network.ben, network.jobcenter)
    # ... and a raise to lead takes a proposal: refused here, nothing stored.
    response = refused_and_nothing_stored(
        lambda: client.post(
            url, {"user": network.dirk.pk, "agency": network.jugendamt.pk, "role": Role.LEAD}
        )
    )
    assert response.status_code == 200
    membership.refresh_from_db()
    assert membership.role == Role.CASEWORKER


# Application tags


def tag_form(office: int, **extra: str) -> dict[str, str]:
    data = {
        "kind": ApplicationTag.Kind.CHILDCARE,
        "processing_agency": str(office),
        "submitted_on": date.today().isoformat(),
        "file_number": "AZ-1",
    }
    data.update(extra)
    return data


def test_tagging_for_an_office_that_processes_no_applications_is_refused(
    network: Network, family: Family, shared: Consent, anna_client: Client, other_family: Family
) -> None:
    for office in (network.project.pk, network.migration.pk, other_family.owner_id, 999_999):
        response = refused_and_nothing_stored(
            lambda office=office: anna_client.post(
                f"/familien/{family.pk}/antrag/", tag_form(office)
            )
        )
        assert response.status_code == 200 and response.context["form"].errors
    response = refused_and_nothing_stored(
        lambda: anna_client.post(
            f"/familien/{other_family.pk}/antrag/", tag_form(network.jobcenter.pk)
        )
    )
    assert response.status_code == 404


def test_extra_fields_of_a_tag_are_ignored(
    network: Network, family: Family, shared: Consent, anna_client: Client, other_family: Family
) -> None:
    response = anna_client.post(
        f"/familien/{family.pk}/antrag/",
        tag_form(
            network.jobcenter.pk,
            code="GEKAPERT",
            family=str(other_family.pk),
            project=str(network.jugendamt.pk),
            coach=str(network.ben.pk),
            state=ApplicationTag.State.DECIDED,
        ),
    )
    assert response.status_code == 302
    tag = ApplicationTag.objects.get()
    assert (tag.family_id, tag.project, tag.coach, tag.state) == (
        family.pk,
        network.project,
        network.anna,
        ApplicationTag.State.SUBMITTED,
    )
    assert tag.code != "GEKAPERT"


def test_the_office_cannot_set_a_state_outside_its_step(
    network: Network, family: Family, shared: Consent
) -> None:
    tag = build_tag(network, family)  # Bürgergeld at the Jobcenter
    ben = verified_client(network.ben)
    for state in (ApplicationTag.State.SUBMITTED, "deleted", ""):
        refused_and_nothing_stored(
            lambda state=state: ben.post(
                f"/antraege/{tag.code}/stand/", {"state": state, "note": "x", "tag": uuid.uuid4()}
            ),
            # The tag's page comes back with the note kept in its box: a recorded reading.
            shown=frozenset({"application_tag.viewed"}),
        )
    tag.refresh_from_db()
    assert tag.state == ApplicationTag.State.SUBMITTED
