"""Every referral and application-tag URL, walked by every role of the sending project, the
receiving agency (the Jobcenter) and a foreign agency (the Amt für Migration): each gets
exactly what the design allows, and every 403/404 is audited under the family.

The table below is written from the rules, not from the code: a URL added to
referrals/urls.py without a row here fails test_every_url_has_expectations.

Who may do what (tests/conftest.py's consent covers the Jobcenter for identity, household
and employment data, for referral and application support):
- project coach, caseworker, lead: see the family's referrals and tags; coach and lead
  send, withdraw, tag; a lead other than the writer approves a referral on a legal basis.
- Jobcenter coach, caseworker, lead: see the sent referral and open the Bürgergeld tag;
  the lead assigns, the assignee (the caseworker) accepts, declines, completes; the
  Wohngeld tag is refused with 403 (the consent does not cover housing data).
- everybody else (DPO and admin roles anywhere, the whole foreign agency): 404, audited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

import applications.urls
import referrals.urls
from applications.models import ApplicationTag
from audit.models import AuditEvent
from dienstweg import actions as core
from dienstweg.models import Consent, DataCategory, Family, Membership, User
from dienstweg.uploads import Upload
from referrals.actions import steps as referral_steps
from referrals.models import Referral
from tests.builders import build_referral, build_tag
from tests.conftest import Network, make_staff, verified_client

PDF = b"%PDF-1.4\n% Lebenslauf\n%%EOF\n"

SIDES = ("project", "jobcenter", "migration")  # sending, receiving, foreign
ROLES = tuple(Membership.Role.values)  # coach, caseworker, lead, dpo, admin
USERS = [f"{side}-{role}" for side in SIDES for role in ROLES]

PROJECT_CASE = {"project-coach", "project-caseworker", "project-lead"}
PROJECT_REFERRING = {"project-coach", "project-lead"}
RECEIVING_CASE = {"jobcenter-coach", "jobcenter-caseworker", "jobcenter-lead"}
RECEIVING_LEAD = {"jobcenter-lead"}
ASSIGNEE = {"jobcenter-caseworker"}
EVERYONE = set(USERS)

# Outcomes
SHOWN = "shown"  # 200, the object is on the page
HIDDEN = "hidden"  # 200 list page without the object
DONE = "done"  # the step is allowed: 200/302 and the state changed
REFUSED = "refused"  # visible, but the role may not take this step: 200/302, nothing changed
FORBIDDEN = "forbidden"  # 403: the tag's processing office without the family's consent
DENIED = "denied"  # 404, audited


@dataclass
class Scenario:
    network: Network
    family: Family
    consent: Consent
    staff: dict[str, User]
    sent: Referral  # to the Jobcenter, assigned to its caseworker
    draft: Referral
    pending: Referral  # statutory basis, submitted by the project coach
    attachment_id: str
    tag: ApplicationTag  # Bürgergeld at the Jobcenter: covered by the consent
    uncovered_tag: ApplicationTag  # Wohngeld at the Jobcenter: housing is not consented


def build_scenario(network: Network, family: Family, consent: Consent) -> Scenario:
    agencies = {"project": network.project, "jobcenter": network.jobcenter}
    agencies["migration"] = network.migration
    staff = {
        f"{side}-{role}": make_staff(
            f"{side}-{role}@example.org", f"{side.title()} {role.title()}", agencies[side], role
        )
        for side in SIDES
        for role in ROLES
    }
    coach = staff["project-coach"]
    sent = build_referral(
        network,
        family,
        need="Arbeitsvermittlung",
        summary="Mutter sucht Teilzeitstelle.",
        notes={DataCategory.EMPLOYMENT: "Ausbildung als Verkäuferin"},
        attachments=[Upload("lebenslauf.pdf", PDF)],
        by=coach,
    )
    sent = referral_steps.assign_referral(
        sent, assignee=staff["jobcenter-caseworker"], by=staff["jobcenter-lead"]
    )
    draft = build_referral(
        network,
        family,
        need="Weiterbildung",
        summary="",
        categories=["identity"],
        send=False,
        by=coach,
    )
    pending = build_referral(
        network,
        family,
        need="Leistungsfall klären",
        summary="",
        categories=["household"],
        basis=Referral.Basis.STATUTORY,
        basis_reason="Übermittlung zur Erfüllung einer gesetzlichen Aufgabe",
        by=coach,
    )
    assert (sent.state, draft.state, pending.state) == ("sent", "draft", "pending_approval")
    submitted = timezone.localdate() - timedelta(days=3)
    tag = build_tag(network, family, submitted_on=submitted, file_number="BG-123", by=coach)
    uncovered = build_tag(
        network,
        family,
        kind=ApplicationTag.Kind.HOUSING_BENEFIT,
        submitted_on=submitted,
        by=coach,
    )
    return Scenario(
        network=network,
        family=family,
        consent=consent,
        staff=staff,
        sent=sent,
        draft=draft,
        pending=pending,
        attachment_id=str(sent.attachments.get().pk),
        tag=tag,
        uncovered_tag=uncovered,
    )


def state_of(referral: Callable[[Scenario], Referral]) -> Callable[[Scenario], object]:
    return lambda s: Referral.objects.values_list("state", flat=True).get(pk=referral(s).pk)


def tag_state(s: Scenario) -> object:
    return ApplicationTag.objects.values_list("state", flat=True).get(pk=s.tag.pk)


def uncovered_tag_state(s: Scenario) -> object:
    return ApplicationTag.objects.values_list("state", flat=True).get(pk=s.uncovered_tag.pk)


@dataclass(frozen=True)
class Case:
    """One request (URL name, method, target) and what each user must get from it."""

    id: str
    url_name: str
    method: str
    kwargs: Callable[[Scenario], dict[str, Any]]
    expected: dict[str, set[str]]  # outcome -> users; everyone else gets `otherwise`
    otherwise: str = DENIED
    denial: str = "referral.access_denied"  # the audited action of a 404
    data: Callable[[Scenario], dict[str, Any]] = lambda s: {}
    observe: Callable[[Scenario], object] | None = None  # the state a POST may change
    after: Callable[[Scenario], object] | None = None  # what `observe` reads once DONE
    markers: Callable[[Scenario], list[str]] = lambda s: []  # on the page iff SHOWN
    prepare: Callable[[Scenario], None] = lambda s: None
    check: Callable[[Scenario, Any], None] = lambda s, response: None  # more on an answer

    def outcome(self, user: str) -> str:
        found = [outcome for outcome, users in self.expected.items() if user in users]
        assert len(found) <= 1, f"{self.id}: {user} has two outcomes {found}"
        return found[0] if found else self.otherwise


def sent_id(s: Scenario) -> dict[str, Any]:
    return {"referral_id": s.sent.pk}


def family_id(s: Scenario) -> dict[str, Any]:
    return {"family_id": s.family.pk}


def detail_url(referral: Callable[[Scenario], Referral]) -> Callable[[Scenario], list[str]]:
    return lambda s: [reverse("referral_detail", args=[referral(s).pk])]


def referral_count(s: Scenario) -> object:
    return s.family.referrals.count()


def tag_count(s: Scenario) -> object:
    return s.family.application_tags.count()


def accept_first(s: Scenario) -> None:
    referral_steps.accept_referral(s.sent, by=s.staff["jobcenter-caseworker"])


def no_unsent_referral_listed(s: Scenario, response: Any) -> None:
    content = response.content.decode()
    for referral in (s.draft, s.pending):
        assert reverse("referral_detail", args=[referral.pk]) not in content


def is_the_attachment(s: Scenario, response: Any) -> None:
    assert b"".join(response.streaming_content if response.streaming else [response.content]) == PDF


def is_a_pdf(s: Scenario, response: Any) -> None:
    assert response.content.startswith(b"%PDF-")


CASES = [
    Case(
        "inbox",
        "referral_inbox",
        "get",
        lambda s: {},
        {SHOWN: RECEIVING_CASE},
        otherwise=HIDDEN,
        # Drafts and referrals awaiting approval never reach anybody's inbox.
        markers=detail_url(lambda s: s.sent),
        check=lambda s, response: no_unsent_referral_listed(s, response),
    ),
    Case(
        "outbox",
        "referral_outbox",
        "get",
        lambda s: {},
        {SHOWN: PROJECT_CASE},
        otherwise=HIDDEN,
        markers=lambda s: [
            reverse("referral_detail", args=[r.pk]) for r in (s.sent, s.draft, s.pending)
        ],
    ),
    Case(
        "new-form",
        "referral_new",
        "get",
        family_id,
        {SHOWN: PROJECT_REFERRING, REFUSED: {"project-caseworker"}},
        denial="family.access_denied",
    ),
    Case(
        "new-post",
        "referral_new",
        "post",
        family_id,
        {DONE: PROJECT_REFERRING, REFUSED: {"project-caseworker"}},
        denial="family.access_denied",
        data=lambda s: {
            "to_agency": s.network.jobcenter.pk,
            "need": "Sprachkurs",
            "summary": "",
            "categories": ["identity"],
        },
        observe=referral_count,
        after=lambda s: 4,
    ),
    Case(
        "detail-sent",
        "referral_detail",
        "get",
        sent_id,
        {SHOWN: PROJECT_CASE | RECEIVING_CASE},
        markers=lambda s: ["Arbeitsvermittlung"],
    ),
    Case(
        "detail-draft",
        "referral_detail",
        "get",
        lambda s: {"referral_id": s.draft.pk},
        {SHOWN: PROJECT_CASE},
        markers=lambda s: ["Weiterbildung"],
    ),
    Case(
        "send-draft",
        "referral_send",
        "post",
        lambda s: {"referral_id": s.draft.pk},
        {DONE: PROJECT_REFERRING, REFUSED: {"project-caseworker"}},
        observe=state_of(lambda s: s.draft),
        after=lambda s: "sent",
    ),
    Case(
        "approve-pending",
        "referral_approve",
        "post",
        lambda s: {"referral_id": s.pending.pk},
        # Four eyes: the coach who wrote it may not approve it.
        {DONE: {"project-lead"}, REFUSED: {"project-coach", "project-caseworker"}},
        observe=state_of(lambda s: s.pending),
        after=lambda s: "sent",
    ),
    Case(
        "refuse-pending",
        "referral_refuse",
        "post",
        lambda s: {"referral_id": s.pending.pk},
        {DONE: {"project-lead"}, REFUSED: {"project-coach", "project-caseworker"}},
        data=lambda s: {"note": "Keine Befugnis erkennbar"},
        observe=state_of(lambda s: s.pending),
        after=lambda s: "refused",
    ),
    Case(
        "withdraw-sent",
        "referral_withdraw",
        "post",
        sent_id,
        {DONE: PROJECT_REFERRING, REFUSED: {"project-caseworker"} | RECEIVING_CASE},
        observe=state_of(lambda s: s.sent),
        after=lambda s: "withdrawn",
    ),
    Case(
        "assign-sent",
        "referral_assign",
        "post",
        sent_id,
        {DONE: RECEIVING_LEAD, REFUSED: PROJECT_CASE | (RECEIVING_CASE - RECEIVING_LEAD)},
        data=lambda s: {"assignee": s.network.ben.pk},
        observe=lambda s: Referral.objects.values_list("assignee_id", flat=True).get(pk=s.sent.pk),
        after=lambda s: s.network.ben.pk,
    ),
    Case(
        "accept-sent",
        "referral_accept",
        "post",
        sent_id,
        {DONE: ASSIGNEE, REFUSED: PROJECT_CASE | (RECEIVING_CASE - ASSIGNEE)},
        observe=state_of(lambda s: s.sent),
        after=lambda s: "accepted",
    ),
    Case(
        "decline-sent",
        "referral_decline",
        "post",
        sent_id,
        {DONE: ASSIGNEE, REFUSED: PROJECT_CASE | (RECEIVING_CASE - ASSIGNEE)},
        data=lambda s: {"note": "Nicht zuständig"},
        observe=state_of(lambda s: s.sent),
        after=lambda s: "declined",
    ),
    Case(
        "complete-accepted",
        "referral_complete",
        "post",
        sent_id,
        {DONE: ASSIGNEE, REFUSED: PROJECT_CASE | (RECEIVING_CASE - ASSIGNEE)},
        data=lambda s: {"note": "In Arbeit vermittelt"},
        observe=state_of(lambda s: s.sent),
        after=lambda s: "completed",
        prepare=accept_first,
    ),
    Case(
        "attachment",
        "referral_attachment",
        "get",
        lambda s: {"referral_id": s.sent.pk, "attachment_id": s.attachment_id},
        {SHOWN: PROJECT_CASE | RECEIVING_CASE},
        check=lambda s, response: response.status_code == 200 and is_the_attachment(s, response),
    ),
    Case(
        "tag-list",
        "tag_list",
        "get",
        lambda s: {},
        {SHOWN: PROJECT_CASE},
        otherwise=HIDDEN,
        markers=lambda s: [s.tag.code, s.uncovered_tag.code],
    ),
    # Entering a code answers with the tag's page itself (the code stays out of the URL),
    # checked as the tag's page is; a refusal answers with the look-up form again.
    Case("lookup-form", "tag_lookup", "get", lambda s: {}, {SHOWN: EVERYONE}),
    Case(
        "lookup-post",
        "tag_lookup",
        "post",
        lambda s: {},
        {SHOWN: PROJECT_CASE | RECEIVING_CASE},
        denial="application_tag.access_denied",
        data=lambda s: {"code": s.tag.code.replace("-", " ").lower()},
        markers=lambda s: ["BG-123"],
    ),
    # Project caseworkers see the form (they may open the family); the action refuses them.
    Case(
        "tag-new-form",
        "tag_new",
        "get",
        family_id,
        {SHOWN: PROJECT_CASE},
        denial="family.access_denied",
    ),
    Case(
        "tag-new-post",
        "tag_new",
        "post",
        family_id,
        {DONE: PROJECT_REFERRING, REFUSED: {"project-caseworker"}},
        denial="family.access_denied",
        data=lambda s: {
            "kind": ApplicationTag.Kind.CHILDCARE,
            "processing_agency": s.network.jugendamt.pk,
            "submitted_on": date.today().isoformat(),
            "file_number": "",
        },
        observe=tag_count,
        after=lambda s: 3,
    ),
    Case(
        "tag-detail",
        "tag_detail",
        "get",
        lambda s: {"code": s.tag.code},
        {SHOWN: PROJECT_CASE | RECEIVING_CASE},
        denial="application_tag.access_denied",
        markers=lambda s: ["BG-123"],
    ),
    Case(
        "tag-detail-uncovered",
        "tag_detail",
        "get",
        lambda s: {"code": s.uncovered_tag.code},
        {SHOWN: PROJECT_CASE, FORBIDDEN: RECEIVING_CASE},
        denial="application_tag.access_denied",
        markers=lambda s: [s.uncovered_tag.code],
    ),
    Case(
        "tag-status",
        "tag_status",
        "post",
        lambda s: {"code": s.tag.code},
        {DONE: RECEIVING_CASE, REFUSED: PROJECT_CASE},
        denial="application_tag.access_denied",
        data=lambda s: {"state": "received", "note": "", "decided_on": ""},
        observe=tag_state,
        after=lambda s: "received",
    ),
    Case(
        "tag-status-uncovered",
        "tag_status",
        "post",
        lambda s: {"code": s.uncovered_tag.code},
        {REFUSED: PROJECT_CASE, FORBIDDEN: RECEIVING_CASE},
        denial="application_tag.access_denied",
        data=lambda s: {"state": "received", "note": "", "decided_on": ""},
        observe=uncovered_tag_state,
    ),
    # The stamp goes on the paper application: the project prints it, the office never.
    Case(
        "tag-stamp",
        "tag_stamp",
        "get",
        lambda s: {"code": s.tag.code},
        {SHOWN: PROJECT_CASE},
        denial="application_tag.access_denied",
        check=lambda s, response: response.status_code == 200 and is_a_pdf(s, response),
    ),
]


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    # Tag look-ups count failures in the cache (the throttle); each test starts at zero.
    cache.clear()


@pytest.fixture
def scenario(network: Network, family: Family, consent: Consent) -> Scenario:
    return build_scenario(network, family, consent)


def denials(action: str, user: User) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(actor_id=user.pk, action=action).order_by("id"))


def test_every_url_has_expectations():
    names = {
        pattern.name for urls in (referrals.urls, applications.urls) for pattern in urls.urlpatterns
    }
    assert names == {case.url_name for case in CASES}
    for case in CASES:
        for outcome, users in case.expected.items():
            assert outcome in {SHOWN, HIDDEN, DONE, REFUSED, FORBIDDEN, DENIED}, case.id
            assert users <= EVERYONE, case.id
        if DONE in case.expected:
            assert case.observe is not None and case.after is not None, case.id
        # The DPO and admin roles, at any agency, see no case content: lists come up empty,
        # everything else is a 404 (entering a code only forwards to the tag's page).
        for key in USERS:
            if key.endswith(("-dpo", "-admin")) and case.id != "lookup-form":
                assert case.outcome(key) in {DENIED, HIDDEN}, (case.id, key)


def check_request(scenario: Scenario, case: Case, key: str) -> None:
    """One user's request, checked against the table."""
    case.prepare(scenario)
    user = scenario.staff[key]
    client = verified_client(user)
    url = reverse(case.url_name, kwargs=case.kwargs(scenario))
    before = case.observe(scenario) if case.observe else None
    last_event = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0

    response = getattr(client, case.method)(url, case.data(scenario))

    expected = case.outcome(key)
    status = response.status_code
    events = AuditEvent.objects.filter(id__gt=last_event, actor_id=user.pk)
    refusals = list(
        events.filter(action__endswith="access_denied").values_list("action", "family_id")
    )
    family = str(scenario.family.pk)
    if expected == DENIED:
        assert status == 404, f"expected 404, got {status}"
        assert refusals == [(case.denial, family)], f"audit: {refusals}"
    elif expected == FORBIDDEN:
        assert status == 403, f"expected 403, got {status}"
        assert "Einwilligung" in response.content.decode()
        missing = list(
            events.filter(action="application_tag.consent_missing").values_list(
                "family_id", flat=True
            )
        )
        assert missing == [family], f"audit: {missing}"
        assert refusals == [], f"audit: {refusals}"
    else:
        # SHOWN and HIDDEN answer 200; a step answers with its page or redirect, and a
        # page the role may not use (a caseworker's referral form) redirects.
        allowed = {200} if expected in {SHOWN, HIDDEN} else {200, 302}
        if expected == REFUSED and case.method == "get":
            allowed = {302}
        assert status in allowed, f"expected {expected} ({allowed}), got {status}"
        assert refusals == [], f"a refusal was audited: {refusals}"
        # A step the role may not take is refused with a message, and audited too.
        steps_refused = list(
            events.filter(action__endswith="step_refused").values_list("family_id", flat=True)
        )
        refused_step = (
            expected == REFUSED
            and case.method == "post"
            and (
                (case.url_name.startswith("referral_") and case.url_name != "referral_new")
                or case.url_name == "tag_status"
            )
        )
        assert steps_refused == ([family] if refused_step else []), f"audit: {steps_refused}"
    if case.observe is not None:
        after = case.observe(scenario)
        if expected == DONE:
            assert case.after is not None
            assert before != after == case.after(scenario), f"state {before} -> {after}"
        else:
            assert after == before, f"state changed: {before} -> {after}"
    if status == 200 and case.markers(scenario):
        content = response.content.decode()
        for marker in case.markers(scenario):
            assert (marker in content) == (expected == SHOWN), (
                f"{marker!r} on page: {marker in content}"
            )
    if expected not in {DENIED, FORBIDDEN}:
        case.check(scenario, response)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_each_role_gets_exactly_what_the_design_allows(scenario: Scenario, case: Case) -> None:
    """Every user of the table in turn, each on the same scenario: her request runs in a
    savepoint that is rolled back, so one user's step never changes what the next finds."""
    problems = []
    for key in USERS:
        try:
            with transaction.atomic():
                try:
                    check_request(scenario, case, key)
                finally:
                    transaction.set_rollback(True)
        except AssertionError as error:
            problems.append(f"{case.id} as {key} ({case.outcome(key)}): {error}")
    assert not problems, "\n".join(problems)


# Beyond the table: how access ends, and what a guess reveals


def test_receiving_side_gets_404_once_the_consent_is_revoked(scenario: Scenario) -> None:
    core.revoke_consent(scenario.consent, note="Widerruf am Telefon", by=scenario.network.anna)
    detail = reverse("referral_detail", args=[scenario.sent.pk])
    attachment = reverse("referral_attachment", args=[scenario.sent.pk, scenario.attachment_id])
    for key in sorted(RECEIVING_CASE):
        user = scenario.staff[key]
        client = verified_client(user)
        assert client.get(detail).status_code == 404, key
        assert client.get(attachment).status_code == 404, key
        assert detail not in client.get(reverse("referral_inbox")).content.decode(), key
        accept = client.post(reverse("referral_accept", args=[scenario.sent.pk]))
        assert accept.status_code == 404, key
        assert len(denials("referral.access_denied", user)) == 3, key
        assert {e.family_id for e in denials("referral.access_denied", user)} == {
            str(scenario.family.pk)
        }
        # The tag's consent is gone too: a clear 403, not a 404 (the clerk holds the paper).
        tag = client.get(reverse("tag_detail", args=[scenario.tag.code]))
        assert tag.status_code == 403, key
    scenario.sent.refresh_from_db()
    assert scenario.sent.state == Referral.State.SENT
    assert scenario.sent.access_ended_at is not None
    # The sender keeps seeing the referral and its outcome (closed loop).
    assert verified_client(scenario.staff["project-coach"]).get(detail).status_code == 200


def test_receiving_side_gets_404_the_day_the_consent_expires(scenario: Scenario) -> None:
    yesterday = timezone.localdate() - timedelta(days=1)
    Referral.objects.filter(pk=scenario.sent.pk).update(access_until=yesterday)
    detail = reverse("referral_detail", args=[scenario.sent.pk])
    caseworker = scenario.staff["jobcenter-caseworker"]
    client = verified_client(caseworker)
    assert client.get(detail).status_code == 404
    assert client.post(reverse("referral_accept", args=[scenario.sent.pk])).status_code == 404
    assert [e.family_id for e in denials("referral.access_denied", caseworker)] == [
        str(scenario.family.pk)
    ] * 2
    assert Referral.objects.get(pk=scenario.sent.pk).state == Referral.State.SENT
    assert verified_client(scenario.staff["project-lead"]).get(detail).status_code == 200


def test_foreign_lead_cannot_assign_even_to_her_own_staff(scenario: Scenario) -> None:
    lead = scenario.staff["migration-lead"]
    response = verified_client(lead).post(
        reverse("referral_assign", args=[scenario.sent.pk]),
        {"assignee": scenario.staff["migration-caseworker"].pk},
    )
    assert response.status_code == 404
    assert (
        Referral.objects.get(pk=scenario.sent.pk).assignee == scenario.staff["jobcenter-caseworker"]
    )
    assert [e.family_id for e in denials("referral.access_denied", lead)] == [
        str(scenario.family.pk)
    ]


def test_unknown_referral_and_tag_look_like_forbidden_ones(scenario: Scenario) -> None:
    coach = scenario.staff["project-coach"]
    client = verified_client(coach)
    missing = "6f1c1d4e-8f6b-4c47-9a4e-3f0a7b9e2d11"
    assert client.get(reverse("referral_detail", args=[missing])).status_code == 404
    assert client.get(reverse("tag_detail", args=["AAAA-BBBB-CCCC"])).status_code == 404
    # Audited, without a family: there is none to name.
    assert [e.family_id for e in denials("referral.access_denied", coach)] == [None]
    assert [e.family_id for e in denials("application_tag.access_denied", coach)] == [None]
