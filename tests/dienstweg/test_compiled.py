"""A query compiled once (dienstweg/compiled.py) answers as the queryset it was built from,
for every value put in its sentinels' places, and is built again when what it read at
build time (today's date) has changed."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dienstweg import worklist
from dienstweg.compiled import (
    IDS,
    SENTINEL_ID,
    SENTINEL_TIME,
    SENTINEL_UUID,
    CompiledQuery,
    planned_once,
)
from dienstweg.models import Agency, Consent, Family, User
from referrals.access import referral_readers, referral_visible_to
from referrals.models import Referral
from tests.builders import build_referral
from tests.conftest import Network


def test_answers_as_the_queryset_for_every_value(network: Network) -> None:
    names = CompiledQuery(
        lambda user_id: User.objects.filter(pk=user_id).values_list("full_name"),
        user_id=SENTINEL_ID,
    )
    for user in (network.anna, network.ben, network.dirk):
        assert names.rows(user_id=user.pk) == [(user.full_name,)]
    assert names.rows(user_id=0) == []


def test_a_list_of_ids_answers_for_every_length(network: Network) -> None:
    names = CompiledQuery(
        lambda ids: User.objects.filter(pk__in=ids).order_by("pk").values_list("pk"),
        ids=IDS,
    )
    anna, ben, dirk = network.anna.pk, network.ben.pk, network.dirk.pk
    assert names.rows(ids=[ben]) == [(ben,)]
    assert names.rows(ids=[dirk, anna]) == sorted([(anna,), (dirk,)])
    assert names.rows(ids=[anna]) == [(anna,)]  # the one-id form again, other values
    assert names.rows(ids=[anna, ben, dirk, 0]) == sorted([(anna,), (ben,), (dirk,)])
    assert names.rows(ids=[]) == []  # an empty list finds nothing, as the ORM's


def test_a_moment_and_the_rows_come_as_the_orm_gives_them(network: Network) -> None:
    """The moment is passed as the backend takes it (text on SQLite), and what comes back
    is converted as the ORM converts it (a datetime, a UUID), not the driver's raw values."""
    joined = CompiledQuery(
        lambda since: (
            User.objects.filter(date_joined__gte=since)
            .order_by("pk")
            .values_list("pk", "date_joined", "data_key_id")
        ),
        since=SENTINEL_TIME,
    )
    orm = list(User.objects.order_by("pk").values_list("pk", "date_joined", "data_key_id"))
    assert joined.rows(since=orm[0][1]) == [row for row in orm if row[1] >= orm[0][1]]
    later = max(row[1] for row in orm) + timedelta(microseconds=1)
    assert joined.rows(since=later) == []
    assert isinstance(joined.rows(since=orm[0][1])[0][1], type(orm[0][1]))


def test_a_sentinel_the_query_does_not_read_is_refused(network: Network) -> None:
    unread = CompiledQuery(lambda user_id: User.objects.all(), user_id=SENTINEL_ID)
    with pytest.raises(ValueError, match="sentinels not found"):
        unread.rows(user_id=network.anna.pk)


def test_not_an_id_where_a_uuid_is_expected_is_no_access(network: Network) -> None:
    assert referral_visible_to(network.ben, "nicht-eine-id") is False
    assert referral_visible_to(network.ben, str(uuid.uuid4())) is False
    assert SENTINEL_UUID.version != 4  # no generated id can be the sentinel


def test_the_rule_is_built_again_when_the_day_changes(
    network: Network, family: Family, consent: Consent, monkeypatch: pytest.MonkeyPatch
) -> None:
    referral = build_referral(network, family)
    today = timezone.localdate()
    Referral.objects.filter(pk=referral.pk).update(access_until=today)
    assert referral_visible_to(network.ben, referral.pk)
    assert network.ben.pk in referral_readers(referral)
    # The next day the receiving side's access has ended, for the compiled rule too.
    monkeypatch.setattr(timezone, "localdate", lambda *args: today + timedelta(days=1))
    assert not referral_visible_to(network.ben, referral.pk)
    assert network.ben.pk not in referral_readers(referral)
    assert referral_visible_to(network.anna, referral.pk)  # the sender keeps it


def test_a_prepared_query_answers_as_the_plain_one_and_is_counted(network: Network) -> None:
    """PREPARED runs the same SQL as a prepared statement on PostgreSQL (elsewhere as it
    is): the same rows, converted alike, for every value, and each run is logged as a query
    where Django logs its own (the tests count queries per page and per message)."""

    def build(since: object) -> Any:
        return (
            User.objects.filter(date_joined__gte=since)
            .order_by("pk")
            .values_list("pk", "date_joined", "full_name")
        )

    plain = CompiledQuery(build, since=SENTINEL_TIME)
    prepared = CompiledQuery(build, since=SENTINEL_TIME, prepared=True)
    moments = sorted(User.objects.values_list("date_joined", flat=True))
    for since in [*moments, moments[-1] + timedelta(seconds=1)] * 2:  # past five runs too
        with CaptureQueriesContext(connection) as captured:
            rows = prepared.rows(since=since)
        assert rows == plain.rows(since=since)
        [logged] = captured.captured_queries
        # The statement with its values, as Django logs its own.
        assert logged["sql"].startswith('SELECT "dienstweg_user"."id"')
        assert "%s" not in logged["sql"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_the_socket_rules_run_as_prepared_statements(
    network: Network, family: Family, consent: object
) -> None:
    """The rules a socket asks on every frame and delivery keep their plan in the
    connection (PostgreSQL planned each call again: most of their time, bench/step4.py)."""
    referral = build_referral(network, family)
    for _run in range(3):
        assert referral_visible_to(network.ben, referral.pk)
        assert network.ben.pk in referral_readers(referral)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [statement for (statement,) in cursor.fetchall()]
    assert any('FROM "referrals_referral"' in statement for statement in statements)
    assert any('FROM "dienstweg_user"' in statement for statement in statements)


def _prepared_statements(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [statement for (statement,) in cursor.fetchall() if f'"{table}"' in statement]


@pytest.mark.postgres
def test_inside_planned_once_the_orm_runs_prepared_statements(network: Network) -> None:
    """Django's own cursors never prepare; inside planned_once they do, and give the same
    rows, logged with their values; after it the connection binds on the client again."""

    def emails() -> list[str]:
        return list(
            User.objects.filter(pk__in=[network.anna.pk, network.ben.pk])
            .order_by("email")
            .values_list("email", flat=True)
        )

    before = emails()
    prepared = _prepared_statements("dienstweg_user")
    assert not any("IN ($1, $2)" in statement for statement in prepared)
    with planned_once(), CaptureQueriesContext(connection) as captured:
        inside = emails()
    assert inside == before
    [statement] = [s for s in _prepared_statements("dienstweg_user") if s not in prepared]
    assert 'FROM "dienstweg_user" WHERE "dienstweg_user"."id" IN ($1, $2)' in statement
    assert "$1" in statement
    [logged] = captured.captured_queries
    assert str(network.anna.pk) in logged["sql"]
    assert "%s" not in logged["sql"]
    assert not connection.features.uses_server_side_binding
    assert emails() == before
    assert len(_prepared_statements("dienstweg_user")) == len(prepared) + 1  # none new


def test_planned_once_leaves_the_answers_and_the_cursor_as_they_were(network: Network) -> None:
    """On every backend (SQLite: nothing to prepare), also when the block fails."""
    factory = getattr(connection.connection, "cursor_factory", None)
    with pytest.raises(RuntimeError), planned_once():
        assert User.objects.get(pk=network.anna.pk).email == network.anna.email
        raise RuntimeError
    assert getattr(connection.connection, "cursor_factory", None) is factory
    assert User.objects.get(pk=network.ben.pk).email == network.ben.email


def test_a_sections_count_is_capped_count_compiled(network: Network, monkeypatch) -> None:
    """CompiledSection.count answers as worklist.capped_count of its build: the number of
    rows, and past the cap one more (a section's "99+")."""
    section = worklist.CompiledSection(
        lambda agencies: User.objects.filter(memberships__agency_id__in=agencies),
        ("full_name",),
        agencies=IDS,
    )
    agencies = list(Agency.objects.values_list("pk", flat=True))
    members = User.objects.filter(memberships__agency_id__in=agencies)
    assert members.count() > 2
    assert section.count(agencies=agencies) == worklist.capped_count(members) == members.count()
    assert section.count(agencies=[network.project.pk]) == worklist.capped_count(
        User.objects.filter(memberships__agency_id=network.project.pk)
    )
    monkeypatch.setattr(worklist, "COUNTED_UP_TO", 1)  # compiled anew for the new cap
    assert section.count(agencies=agencies) == worklist.capped_count(members) == 2
