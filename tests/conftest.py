"""Named personas, built through the real actions, and helpers to log them in.

Who may see what: the directory is open to every verified member; the Yılmaz family
(fixture `family`, registered by Anna) only to case roles of the project (Anna); Ben's
Jobcenter is named in the family's consent but sees nothing of the record itself.
- Anna: coach at the family-coaching project (Familiencoaching Gladbeck, rebeq GmbH)
- Ben: caseworker at the Jobcenter
- Clara: lead at the Jugendamt
- Dirk: caseworker at an unrelated agency (the outsider in later steps)
- Dora: data-protection officer
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from django.core.mail import EmailMessage
from django.db import connection
from django.test import Client
from django.utils import translation
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP

from dienstweg import actions, outbox
from dienstweg import clock as dienstweg_clock
from dienstweg.models import (
    Agency,
    AuthenticatorDevice,
    Consent,
    DataCategory,
    Family,
    HouseholdMember,
    Membership,
    Purpose,
    User,
)
from tests.audit.helpers import empty_audit_tables
from tests.dienstweg.helpers import empty_consent_tables

PASSWORD = "richtig-langes-Passwort-42"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Argon2 is the production hasher (tests/dienstweg/test_settings.py); tests need speed.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def postgresql_only(request: pytest.FixtureRequest) -> None:
    """Tests marked `postgres` need PostgreSQL-only behaviour: skipped on SQLite, in every
    package (pyproject.toml's marker)."""
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...)")


@pytest.fixture(autouse=True)
def german_first() -> Iterator[None]:
    """Each test starts and ends in the default language: a request with the English cookie
    leaves English active in its thread, which renders the next test's live messages (on
    this thread) in English."""
    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def audit_anchor_dir(settings, tmp_path_factory: pytest.TempPathFactory) -> None:
    # Each test's database starts empty, so each gets its own anchor of the trail's head
    # (audit/anchor.py); the directory is made only when something seals.
    settings.AUDIT_ANCHOR_DIR = tmp_path_factory.getbasetemp() / f"audit-anchor-{next(_anchors)}"


_anchors = itertools.count(1)


@pytest.fixture(autouse=True)
def erasure_register_and_backup_dirs(settings, tmp_path_factory: pytest.TempPathFactory) -> None:
    # Likewise the erasure register (dienstweg/erasure_register.py) that restore applies,
    # and where `backup` writes and removes its files.
    number = next(_registers)
    settings.ERASURE_REGISTER_DIR = tmp_path_factory.getbasetemp() / f"erasure-register-{number}"
    settings.BACKUP_DIR = tmp_path_factory.getbasetemp() / f"backups-{number}"
    settings.BACKUP_KEYS_DIR = tmp_path_factory.getbasetemp() / f"backup-keys-{number}"


_registers = itertools.count(1)


class Clock:
    """dienstweg.clock for a test: time stands still until the test moves it on, so that a
    window (session idle time, the socket rate limit, a TOTP step) is crossed when the test
    says so, not when a busy machine happens to be slow."""

    def __init__(self) -> None:
        self.wall = time.time()
        self.elapsed = time.monotonic()

    def now(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.elapsed

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.elapsed += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(dienstweg_clock, "now", fake.now)
    monkeypatch.setattr(dienstweg_clock, "monotonic", fake.monotonic)
    return fake


@dataclass
class Network:
    project: Agency
    jobcenter: Agency
    jugendamt: Agency
    migration: Agency
    anna: User
    ben: User
    clara: User
    dirk: User
    dora: User


def make_staff(email: str, name: str, agency: Agency, role: str) -> User:
    user = actions.create_staff(email, full_name=name, password=PASSWORD)
    actions.add_membership(user, agency=agency, role=role, by=None)
    return user


@pytest.fixture
def network(db) -> Network:
    project = actions.create_agency(
        name="Familiencoaching Gladbeck (rebeq GmbH)", kind="project", rechtskreis="other"
    )
    jobcenter = actions.create_agency(
        name="Jobcenter Kreis Recklinghausen, Bezirksstelle Gladbeck",
        kind="jobcenter",
        rechtskreis="sgb_ii",
    )
    jugendamt = actions.create_agency(
        name="Stadt Gladbeck, Amt für Jugend und Familie", kind="jugendamt", rechtskreis="sgb_viii"
    )
    migration = actions.create_agency(
        name="Stadt Gladbeck, Amt für Migration und Zusammenleben",
        kind="partner",
        rechtskreis="other",
    )
    return Network(
        project=project,
        jobcenter=jobcenter,
        jugendamt=jugendamt,
        migration=migration,
        anna=make_staff("anna@example.org", "Anna Albers", project, Membership.Role.COACH),
        ben=make_staff("ben@example.org", "Ben Becker", jobcenter, Membership.Role.CASEWORKER),
        clara=make_staff("clara@example.org", "Clara Czerny", jugendamt, Membership.Role.LEAD),
        dirk=make_staff("dirk@example.org", "Dirk Dahl", migration, Membership.Role.CASEWORKER),
        dora=make_staff("dora@example.org", "Dora Demir", jugendamt, Membership.Role.DPO),
    )


def enrol(user: User) -> AuthenticatorDevice:
    """Give the user a confirmed authenticator, as the enrolment page would."""
    device = actions.start_totp_enrolment(user)
    actions.confirm_totp_enrolment(device, token=current_code(device))
    device.refresh_from_db()
    return device


def current_code(device: AuthenticatorDevice, offset_steps: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = dienstweg_clock.now() + offset_steps * device.step  # the device's clock
    return f"{totp.token():06d}"


def verified_client(user: User) -> Client:
    """A browser whose session is logged in and verified by the user's authenticator."""
    device = AuthenticatorDevice.objects.filter(user=user, confirmed=True).first() or enrol(user)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def prepared_while(client: Client, url: str) -> list[str]:
    """The statements the connection prepared (PostgreSQL) while CLIENT opened URL: a page
    under dienstweg.compiled.planned_once prepares its queries; Django alone never does."""

    def prepared() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            return {statement for (statement,) in cursor.fetchall()}

    before = prepared()
    assert client.get(url).status_code == 200
    return sorted(prepared() - before)


@pytest.fixture
def committed(transactional_db: None) -> Iterator[None]:
    """Real commits, seen by other connections (the race tests). The audit trail is
    append-only, so its rows are removed with the triggers lifted before Django empties
    the tables; so are the consents (on SQLite, whose flush deletes row by row)."""
    yield
    empty_audit_tables()
    empty_consent_tables()


@pytest.fixture
def send_outbox(mailoutbox: list[EmailMessage]) -> Callable[[], list[EmailMessage]]:
    """Run the outbox's sender once, as its service does; returns Django's test outbox (every
    e-mail sent so far). Actions only queue their e-mails: nothing is sent without this."""

    def send() -> list[EmailMessage]:
        outbox.send_due()
        return mailoutbox

    return send


@pytest.fixture
def anna_client(network: Network) -> Client:
    return verified_client(network.anna)


YILMAZ = [
    actions.MemberData("adult", "Ayşe", "Yılmaz", date(1988, 4, 12)),
    actions.MemberData("child", "Leyla", "Yılmaz", date(2010, 1, 20)),
    actions.MemberData("child", "Emre", "Yılmaz", date(2016, 9, 1)),
]


@pytest.fixture
def family(network: Network) -> Family:
    """The Yılmaz family, registered by Anna at the project."""
    return actions.register_family(
        owner=network.project,
        members=YILMAZ,
        address="Horster Straße 30, 45964 Gladbeck",
        phone="02043 123456",
        notes="Mutter sucht Teilzeitstelle; Kita-Platz für Emre fehlt.",
        by=network.anna,
    )


def member(family: Family, first_name: str) -> HouseholdMember:
    return next(m for m in family.members.all() if m.decrypt_field("first_name") == first_name)


def consent_data(network: Network, family: Family, **changes: object) -> actions.ConsentData:
    """Ayşe consents for herself: Jobcenter, referral and application support, one year."""
    values: dict[str, object] = {
        "recipients": [network.jobcenter],
        "categories": [DataCategory.IDENTITY, DataCategory.HOUSEHOLD, DataCategory.EMPLOYMENT],
        "purposes": [Purpose.REFERRAL, Purpose.APPLICATION_SUPPORT],
        "valid_from": date.today(),
        "valid_until": date.today() + timedelta(days=365),
        "given_by": member(family, "Ayşe"),
        "capacity": Consent.Capacity.ADULT_SELF,
        "method": Consent.Method.ORAL_RECORDED,
        "witness_note": "Belehrung durch A. Albers im Beisein von P. Peters",
        "text_version": "2026-1",
    }
    values.update(changes)
    return actions.ConsentData(**values)  # type: ignore[arg-type]


@pytest.fixture
def consent(network: Network, family: Family) -> Consent:
    return actions.grant_consent(family, data=consent_data(network, family), by=network.anna)
