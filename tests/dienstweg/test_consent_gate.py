"""The consent gate (dienstweg/consent.py): which agency, categories, purpose and day a
family's consents cover; and, property-based, the pure core uncovered() over Terms."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from dienstweg import actions
from dienstweg.consent import (
    ConsentMissing,
    Terms,
    consent_scope,
    has_consent,
    require_consent,
    uncovered,
)
from dienstweg.models import DataCategory, Purpose
from tests.conftest import consent_data

# The `consent` fixture: Ayşe, for the Jobcenter, identity + household + employment,
# referral + application support, from today for a year.
COVERED = [DataCategory.IDENTITY, DataCategory.EMPLOYMENT]


def covers(family, agency, categories=COVERED, purpose=Purpose.REFERRAL) -> bool:
    return has_consent(family, to_agency=agency, categories=categories, purpose=purpose)


def required(family, agency, categories=COVERED, purpose=Purpose.REFERRAL):
    with transaction.atomic():
        return require_consent(family, to_agency=agency, categories=categories, purpose=purpose)


@pytest.fixture
def on_day(monkeypatch):
    """Move the gate's "today" (timezone.localdate) to another day."""

    def move(day: date) -> None:
        monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: day)

    return move


def test_covered_agency_categories_and_purpose_pass(network, family, consent):
    assert covers(family, network.jobcenter)
    assert covers(family, network.jobcenter, purpose=Purpose.APPLICATION_SUPPORT)
    assert required(family, network.jobcenter) == [consent]


def test_another_agency_is_not_covered(network, family, consent):
    assert not covers(family, network.jugendamt)
    with pytest.raises(ConsentMissing) as refused:
        required(family, network.jugendamt)
    assert refused.value.missing == set(COVERED)


def test_another_purpose_is_not_covered(network, family, consent):
    assert not covers(family, network.jobcenter, purpose=Purpose.CASE_COORDINATION)
    with pytest.raises(ConsentMissing):
        required(family, network.jobcenter, purpose=Purpose.CASE_COORDINATION)


def test_an_uncovered_category_is_not_covered(network, family, consent):
    asked = [DataCategory.IDENTITY, DataCategory.HEALTH]
    assert not covers(family, network.jobcenter, categories=asked)
    with pytest.raises(ConsentMissing) as refused:
        required(family, network.jobcenter, categories=asked)
    assert refused.value.missing == {"health"}


def test_not_covered_before_valid_from(network, family, on_day):
    starts = timezone.localdate() + timedelta(days=7)
    actions.grant_consent(
        family,
        data=consent_data(network, family, valid_from=starts, valid_until=starts + timedelta(30)),
        by=network.anna,
    )
    assert not covers(family, network.jobcenter)
    on_day(starts - timedelta(days=1))
    assert not covers(family, network.jobcenter)
    with pytest.raises(ConsentMissing):
        required(family, network.jobcenter)
    on_day(starts)
    assert covers(family, network.jobcenter)


def test_not_covered_after_valid_until(network, family, consent, on_day):
    on_day(consent.valid_until)
    assert covers(family, network.jobcenter)
    on_day(consent.valid_until + timedelta(days=1))
    assert not covers(family, network.jobcenter)
    with pytest.raises(ConsentMissing):
        required(family, network.jobcenter)


def test_not_covered_after_revocation(network, family, consent):
    actions.revoke_consent(consent, note="", by=network.anna)
    assert not covers(family, network.jobcenter)
    with pytest.raises(ConsentMissing) as refused:
        required(family, network.jobcenter)
    assert refused.value.missing == set(COVERED)


def test_two_consents_together_cover_the_categories(network, family):
    identity = actions.grant_consent(
        family,
        data=consent_data(network, family, categories=[DataCategory.IDENTITY]),
        by=network.anna,
    )
    employment = actions.grant_consent(
        family,
        data=consent_data(network, family, categories=[DataCategory.EMPLOYMENT]),
        by=network.anna,
    )
    assert covers(family, network.jobcenter)
    assert set(required(family, network.jobcenter)) == {identity, employment}

    actions.revoke_consent(employment, note="", by=network.anna)
    assert not covers(family, network.jobcenter)
    with pytest.raises(ConsentMissing) as refused:
        required(family, network.jobcenter)
    assert refused.value.missing == {"employment"}


def test_scope_names_the_covered_agencies_and_their_categories(network, family, consent):
    scope = consent_scope(family, purpose=Purpose.REFERRAL)
    assert scope.agency_ids == {network.jobcenter.pk}
    assert scope.categories_for(network.jobcenter.pk) == {
        DataCategory.IDENTITY,
        DataCategory.HOUSEHOLD,
        DataCategory.EMPLOYMENT,
    }
    assert scope.categories_for(network.jugendamt.pk) == frozenset()
    assert consent_scope(family, purpose=Purpose.CASE_COORDINATION).agency_ids == set()


def test_scope_keeps_categories_per_agency_and_adds_consents_up(network, family, consent):
    actions.grant_consent(
        family,
        data=consent_data(
            network,
            family,
            recipients=[network.jugendamt, network.jobcenter],
            categories=[DataCategory.CHILDREN],
            purposes=[Purpose.REFERRAL],
        ),
        by=network.anna,
    )
    scope = consent_scope(family, purpose=Purpose.REFERRAL)
    assert scope.categories_for(network.jugendamt.pk) == {DataCategory.CHILDREN}
    assert DataCategory.CHILDREN in scope.categories_for(network.jobcenter.pk)
    assert DataCategory.EMPLOYMENT not in scope.categories_for(network.jugendamt.pk)
    assert scope.categories == {
        DataCategory.IDENTITY,
        DataCategory.HOUSEHOLD,
        DataCategory.EMPLOYMENT,
        DataCategory.CHILDREN,
    }


def test_scope_agrees_with_the_gate(network, family, consent):
    scope = consent_scope(family, purpose=Purpose.REFERRAL)
    for agency in (network.jobcenter, network.jugendamt, network.migration):
        for category in DataCategory.values:
            assert (category in scope.categories_for(agency.pk)) == covers(
                family, agency, categories=[category]
            ), (agency, category)


def test_scope_ends_with_revocation_and_validity(network, family, consent):
    until = consent.valid_until
    assert consent_scope(family, purpose=Purpose.REFERRAL, today=until).agency_ids
    after = consent_scope(family, purpose=Purpose.REFERRAL, today=until + timedelta(days=1))
    assert after.agency_ids == set()
    actions.revoke_consent(consent, note="", by=network.anna)
    assert consent_scope(family, purpose=Purpose.REFERRAL).agency_ids == set()


def test_require_consent_returns_only_the_consents_it_relies_on(network, family, consent):
    other = actions.grant_consent(
        family,
        data=consent_data(network, family, categories=[DataCategory.HEALTH]),
        by=network.anna,
    )
    assert required(family, network.jobcenter) == [consent]
    assert other not in required(family, network.jobcenter)


def test_consent_missing_names_the_missing_categories(network, family, consent):
    asked = [DataCategory.IDENTITY, DataCategory.HEALTH, DataCategory.ADDICTION]
    with pytest.raises(ConsentMissing) as refused:
        required(family, network.jobcenter, categories=asked)
    assert refused.value.missing == {"health", "addiction"}
    assert "addiction" in str(refused.value)
    assert "health" in str(refused.value)
    assert "identity" not in str(refused.value)


def test_nothing_to_transmit_is_refused(network, family, consent):
    with pytest.raises(ConsentMissing):
        required(family, network.jobcenter, categories=[])


# `committed` (tests/conftest.py): no test transaction around the test, so
# require_consent() sees the real autocommit mode.
def test_require_consent_outside_a_transaction_raises(committed, network, family, consent):
    assert not connection.in_atomic_block
    with pytest.raises(RuntimeError, match="inside the transmitting transaction"):
        require_consent(
            family, to_agency=network.jobcenter, categories=COVERED, purpose=Purpose.REFERRAL
        )


# The pure core, property-based

BASE = date(2026, 1, 1)
AGENCIES = st.integers(min_value=1, max_value=4)
CATEGORIES = st.sampled_from(DataCategory.values)
PURPOSES = st.sampled_from(Purpose.values)
DAYS = st.integers(min_value=-60, max_value=60).map(lambda offset: BASE + timedelta(offset))


ANY_REVOCATION = st.booleans()


@st.composite
def terms(draw, revoked=ANY_REVOCATION) -> Terms:
    valid_from = draw(DAYS)
    return Terms(
        recipients=frozenset(draw(st.sets(AGENCIES, max_size=4))),
        categories=frozenset(draw(st.sets(CATEGORIES, max_size=len(DataCategory.values)))),
        purposes=frozenset(draw(st.sets(PURPOSES, max_size=3))),
        valid_from=valid_from,
        valid_until=valid_from + timedelta(draw(st.integers(min_value=0, max_value=60))),
        revoked=draw(revoked),
    )


TERM_LISTS = st.lists(terms(), max_size=6)
REQUESTS = st.sets(CATEGORIES, min_size=1)


def gaps(all_terms, *, agency, categories, purpose, on) -> set[str]:
    return uncovered(all_terms, agency_id=agency, categories=categories, purpose=purpose, on=on)


@settings(max_examples=200, deadline=None)
@given(term=terms(revoked=st.just(False)), agency=AGENCIES, purpose=PURPOSES, day=DAYS)
def test_one_consent_covers_exactly_inside_its_validity_window(term, agency, purpose, day):
    term = replace(term, recipients=term.recipients | {agency}, purposes=term.purposes | {purpose})
    asked = set(DataCategory.values)
    missing = gaps([term], agency=agency, categories=asked, purpose=purpose, on=day)
    if term.valid_from <= day <= term.valid_until:
        assert missing == asked - term.categories
    else:
        assert missing == asked


@settings(max_examples=200, deadline=None)
@given(
    others=TERM_LISTS,
    term=terms(),
    agency=AGENCIES,
    purpose=PURPOSES,
    day=DAYS,
    asked=REQUESTS,
)
def test_revocation_always_wins(others, term, agency, purpose, day, asked):
    revoked = replace(term, revoked=True)
    args = {"agency": agency, "categories": asked, "purpose": purpose, "on": day}
    # A revoked consent adds nothing, and revoking one never covers more.
    assert gaps([*others, revoked], **args) == gaps(others, **args)
    assert gaps([*others, term], **args) <= gaps([*others, revoked], **args)
    # With every consent revoked, nothing is covered.
    everything_revoked = [replace(t, revoked=True) for t in [*others, term]]
    assert gaps(everything_revoked, **args) == asked


@settings(max_examples=200, deadline=None)
@given(
    before=TERM_LISTS,
    added=terms(),
    agency=AGENCIES,
    purpose=PURPOSES,
    day=DAYS,
    asked=REQUESTS,
)
def test_adding_a_consent_never_uncovers_a_category(before, added, agency, purpose, day, asked):
    args = {"agency": agency, "categories": asked, "purpose": purpose, "on": day}
    missing_before = gaps(before, **args)
    assert missing_before <= asked
    assert gaps([*before, added], **args) <= missing_before


@settings(max_examples=200, deadline=None)
@given(
    others=TERM_LISTS,
    term=terms(),
    agency=AGENCIES,
    purpose=PURPOSES,
    day=DAYS,
    asked=REQUESTS,
)
def test_without_the_agency_or_the_purpose_nothing_is_covered(
    others, term, agency, purpose, day, asked
):
    args = {"agency": agency, "categories": asked, "purpose": purpose, "on": day}
    # One consent that covers everything asked, among any others.
    covering = replace(
        term,
        recipients=term.recipients | {agency},
        purposes=term.purposes | {purpose},
        categories=term.categories | asked,
        valid_from=min(term.valid_from, day),
        valid_until=max(term.valid_until, day),
        revoked=False,
    )
    all_terms = [*others, covering]
    assert gaps(all_terms, **args) == set()
    without_agency = [replace(t, recipients=t.recipients - {agency}) for t in all_terms]
    without_purpose = [replace(t, purposes=t.purposes - {purpose}) for t in all_terms]
    assert gaps(without_agency, **args) == asked
    assert gaps(without_purpose, **args) == asked


@settings(max_examples=200, deadline=None)
@given(all_terms=TERM_LISTS, agency=AGENCIES, purpose=PURPOSES, day=DAYS, asked=REQUESTS)
def test_a_category_is_covered_only_by_a_consent_that_allows_it(
    all_terms, agency, purpose, day, asked
):
    args = {"agency": agency, "categories": asked, "purpose": purpose, "on": day}
    allowed = set().union(
        *(t.categories for t in all_terms if t.allows(agency_id=agency, purpose=purpose, on=day))
    )
    assert gaps(all_terms, **args) == asked - allowed
