"""record(): inside the action's transaction only, ids and labels only, request context."""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.db import connection, transaction
from django.http import HttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from audit import context
from audit.middleware import RequestContextMiddleware
from audit.models import AuditEvent
from audit.registry import declare
from audit.trail import LABEL, check_details, record, record_each
from tests.audit.helpers import Family, Person, postgresql

FAMILY = Family(pk=uuid.UUID("0b7c9a1e-4a4f-4e0c-9d1b-2f5a6c7d8e9f"), reference="F-2026-0042")


class Boom(Exception):
    pass


def test_record_outside_a_transaction_raises_and_writes_nothing(trail: None) -> None:
    with pytest.raises(RuntimeError, match="inside the transaction"):
        record(Person(pk=1), "family.viewed")
    assert not AuditEvent.objects.exists()


def test_event_commits_with_its_action(trail: None) -> None:
    with transaction.atomic():
        group = Group.objects.create(name="Fallkonferenz")
        record(Person(pk=1), "group.created", target=group)
    assert Group.objects.filter(name="Fallkonferenz").exists()
    assert AuditEvent.objects.filter(action="group.created", target_id=str(group.pk)).exists()


def test_action_that_rolls_back_leaves_no_event(trail: None) -> None:
    with pytest.raises(Boom), transaction.atomic():
        group = Group.objects.create(name="Fallkonferenz")
        record(Person(pk=1), "group.created", target=group)
        raise Boom
    assert not Group.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_records_actor_target_family_purpose_and_request_context() -> None:
    with context.bind(request_id="4f1c2d", ip="192.0.2.7", agency_id=3):
        event = record(
            Person(pk=12),
            "family.viewed",
            target=("dienstweg.family", FAMILY.pk),
            family=FAMILY,
            purpose="§ 67b SGB X, Einwilligung",
            details={"consent_id": 5, "state": "active"},
        )
    event.refresh_from_db()
    assert (event.actor_id, event.actor_label) == (12, "user:12")
    assert (event.target_type, event.target_id) == ("dienstweg.family", str(FAMILY.pk))
    assert (event.family_id, event.family_ref) == (str(FAMILY.pk), "F-2026-0042")
    assert event.purpose == "§ 67b SGB X, Einwilligung"
    assert (event.request_id, event.ip, event.agency_id) == ("4f1c2d", "192.0.2.7", 3)
    assert event.details == {"consent_id": 5, "state": "active"}


@pytest.mark.django_db
def test_explicit_agency_overrides_the_request_context() -> None:
    with context.bind(agency_id=3):
        event = record(Person(pk=12), "referral.sent", agency_id=9)
    assert event.agency_id == 9


@pytest.mark.django_db
def test_model_instance_target_is_named_by_model_label_and_primary_key() -> None:
    group = Group.objects.create(name="Team")
    event = record(None, "group.created", target=group)
    assert (event.target_type, event.target_id) == ("auth.group", str(group.pk))


@pytest.mark.django_db
def test_no_actor_is_the_system_and_an_anonymous_user_is_anonymous() -> None:
    system = record(None, "retention.ran")
    anonymous = record(AnonymousUser(), "auth.login_failed")
    labelled = record("system:sealer", "audit.sealed")
    assert (system.actor_id, system.actor_label) == (None, "system")
    assert (anonymous.actor_id, anonymous.actor_label) == (None, "anonymous")
    assert (labelled.actor_id, labelled.actor_label) == (None, "system:sealer")


@pytest.mark.django_db
def test_transaction_id_is_filled_in_by_the_database() -> None:
    event = record(None, "family.viewed")
    event.refresh_from_db()
    if postgresql():
        with connection.cursor() as cursor:
            cursor.execute("SELECT txid_current()")
            assert event.txid == cursor.fetchone()[0]
    else:
        assert event.txid is None  # SQLite seals by id


@pytest.mark.django_db
@pytest.mark.parametrize(
    "action", ["viewed", "Family.Viewed", "family viewed", "family.", "x" * 70]
)
def test_action_must_be_a_dotted_name(action: str) -> None:
    with pytest.raises(ValueError, match="action"):
        record(None, action)
    with pytest.raises(ValueError, match="action"):
        declare(action, "Test", module=__name__)


@pytest.mark.django_db
def test_undeclared_action_is_refused_and_nothing_written() -> None:
    with pytest.raises(ValueError, match="not declared"), transaction.atomic():
        record(None, "family.looked_at")
    assert not AuditEvent.objects.filter(action="family.looked_at").exists()


def test_an_action_is_declared_by_one_module_only() -> None:
    with pytest.raises(ValueError, match="declared in"):
        declare("family.viewed", "Zweites Label", module="somewhere.else")


PERSONAL_DATA = [
    "Anna Albers",  # a name
    "anna.albers@example.org",  # an e-mail address
    "Musterstraße 12",  # an address
    "0176 1234567",  # a phone number as typed
    "Kind hat Asthma",  # free text
    "a" * 65,  # too long for an id or label
    "F-2026-0042\n",  # a trailing newline would slip past a careless "$"
]


@pytest.mark.django_db
@pytest.mark.parametrize("value", PERSONAL_DATA)
def test_details_refuse_free_text_names_and_addresses(value: str) -> None:
    with pytest.raises(ValueError, match=r"details\['note'\]") as refused:
        record(None, "family.viewed", details={"note": value})
    assert value not in str(refused.value)  # the error message does not repeat it


@pytest.mark.django_db
@pytest.mark.parametrize("value", [1.5, [1, 2], {"id": 1}, b"raw", 2**64])
def test_details_refuse_lists_nesting_and_other_types(value: object) -> None:
    with pytest.raises(ValueError, match="details"):
        record(None, "family.viewed", details={"value": value})


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["Name", "first name", "e-mail", "", "x" * 41])
def test_details_keys_must_be_identifiers(key: str) -> None:
    with pytest.raises(ValueError, match="details key"):
        record(None, "family.viewed", details={key: 1})


@pytest.mark.django_db
def test_details_keep_ids_labels_numbers_and_flags() -> None:
    details = {
        "consent_id": 17,
        "thread": str(uuid.UUID(int=5)),
        "family_ref": "F-2026-0042",
        "state": "consent:revoked",
        "valid_until": "2026-12-31",
        "path": "referrals/42",
        "urgent": True,
        "agency_id": None,
    }
    event = record(None, "consent.revoked", details=details)
    event.refresh_from_db()
    assert event.details == details


@pytest.mark.django_db
def test_stored_details_hold_only_ids_and_labels() -> None:
    """Try to record personal data next to ids; then scan what reached the table."""
    record(None, "family.viewed", details={"consent_id": 3, "state": "active"})
    for value in PERSONAL_DATA:
        with pytest.raises(ValueError):
            record(None, "family.viewed", details={"state": "active", "note": value})
    scanned = 0
    for details in AuditEvent.objects.values_list("details", flat=True):
        check_details(details)  # raises for anything but ids, labels, numbers, flags
        for value in details.values():
            assert value is None or isinstance(value, int) or LABEL.fullmatch(value)
        scanned += 1
    assert scanned == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "bad",
    [
        {"target": ("dienstweg.family", "Anna Albers")},
        {"family": Family(pk=uuid.uuid4(), reference="Familie Albers")},
        {"purpose": "x" * 201},
    ],
)
def test_targets_families_and_purposes_take_no_free_text(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        record(None, "family.viewed", **bad)  # type: ignore[arg-type]


def test_middleware_binds_a_request_id_and_the_client_address_from_the_platform(settings) -> None:
    settings.TRUSTED_PROXIES = ["127.0.0.1"]  # dienstweg.security.client_ip trusts the proxy
    seen: list[context.RequestContext] = []

    def view(request):
        seen.append(context.current())
        return HttpResponse("ok")

    request = RequestFactory().get(
        "/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.23"
    )
    response = RequestContextMiddleware(view)(request)
    assert seen[0].ip == "198.51.100.23"
    assert re.fullmatch(r"[0-9a-f]{32}", seen[0].request_id)
    assert response["X-Request-ID"] == seen[0].request_id
    assert context.current() == context.RequestContext()  # unbound after the request


def test_middleware_runs_right_after_authentication(settings) -> None:
    middleware = list(settings.MIDDLEWARE)
    position = middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    assert middleware[position + 1] == "audit.middleware.RequestContextMiddleware"
    assert settings.AUDIT_CLIENT_IP_CALLABLE == "dienstweg.security.client_ip"


@pytest.mark.django_db
def test_every_response_carries_its_request_id(client) -> None:
    response = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


@pytest.mark.django_db
def test_record_each_writes_one_event_per_family_in_one_insert() -> None:
    other = Family(pk=uuid.UUID("6d2e9f3a-1b4c-4d5e-8f70-9a1b2c3d4e5f"), reference="F-2026-0043")
    with (
        transaction.atomic(),
        context.bind(request_id="4f1c2d", ip="192.0.2.7", agency_id=3),
        CaptureQueriesContext(connection) as queries,
    ):
        record_each(Person(pk=12), "family.viewed", [FAMILY, other], details={"page": 1})
    assert len([q for q in queries.captured_queries if q["sql"].startswith("INSERT")]) == 1
    events = AuditEvent.objects.order_by("id")
    assert [(e.family_id, e.family_ref) for e in events] == [
        (str(FAMILY.pk), "F-2026-0042"),
        (str(other.pk), "F-2026-0043"),
    ]
    assert {(e.actor_label, e.request_id, e.agency_id) for e in events} == {
        ("user:12", "4f1c2d", 3)
    }
    assert {tuple(e.details.items()) for e in events} == {(("page", 1),)}
    if connection.vendor == "postgresql":
        # Written by hand there (trail._INSERT_EACH): the column's default still stamps the
        # transaction the sealer orders by.
        assert len({e.txid for e in events}) == 1
        assert events[0].txid is not None


def test_record_each_checks_like_record(trail: None) -> None:
    with pytest.raises(RuntimeError, match="inside the transaction"):
        record_each(Person(pk=1), "family.viewed", [FAMILY])
    with pytest.raises(ValueError), transaction.atomic():
        record_each(Person(pk=1), "family.viewed", [FAMILY], details={"name": "Ayşe Yılmaz"})
    assert not AuditEvent.objects.exists()
