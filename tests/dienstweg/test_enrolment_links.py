"""Enrolment links (dienstweg/actions/lifecycle.py): single use, 72 hours, stored only as a
hash, voided by a newer link, e-mailed with nothing but the link; and who may issue them."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from dienstweg import actions
from dienstweg.access import enrolment_link_by_token
from dienstweg.models import AuthenticatorDevice, EnrolmentLink, User
from tests.conftest import PASSWORD, current_code, enrol

pytestmark = pytest.mark.usefixtures("slow_throttle")

NEW_PASSWORD = "Wohngeld-Antrag-2026-sicher"
INVALID = "Dieser Link gilt nicht (mehr)."


def token_of(issued: actions.IssuedLink) -> str:
    return urlsplit(issued.url).path.rstrip("/").rsplit("/", 1)[1]


def new_account(by: User | None = None, **kwargs) -> actions.IssuedLink:
    return actions.create_account("nina@example.org", full_name="Nina Neu", by=by, **kwargs)


def ada() -> User:
    return User.objects.create_superuser("ada@example.org", PASSWORD, full_name="Ada Admin")


def enrol_through(issued: actions.IssuedLink, *, now=None, password: str = NEW_PASSWORD):
    device = actions.pending_authenticator(issued.link.user, device_id=None)
    return actions.enrol_by_link(
        issued.link, device=device, password=password, token=current_code(device), now=now
    )


# Creating an account


def test_new_account_has_no_usable_password_and_one_open_link(db):
    issued = new_account(by=ada())
    user = issued.link.user
    assert not user.has_usable_password()
    assert issued.link.purpose == EnrolmentLink.Purpose.ENROL
    assert issued.link.expires_at - issued.link.created_at == timedelta(hours=72)
    assert enrolment_link_by_token(token_of(issued)) == issued.link


def test_validity_follows_the_setting(db, settings):
    settings.ENROLMENT_LINK_HOURS = 24
    issued = new_account()
    assert issued.link.expires_at - issued.link.created_at == timedelta(hours=24)


def test_only_admins_create_accounts(network):
    with pytest.raises(actions.NotAllowed):
        new_account(by=network.clara)  # a lead, not an admin
    assert not User.objects.filter(email="nina@example.org").exists()


def test_an_address_is_taken_once(db):
    new_account()
    with pytest.raises(actions.ActionError, match="gibt es schon"):
        actions.create_account(" NINA@example.org", full_name="Nina Zwei", by=None)


def test_creation_and_link_are_audited_with_ids_only(db):
    admin = ada()
    issued = new_account(by=admin)
    events = AuditEvent.objects.filter(actor_id=admin.pk).order_by("id")
    assert list(events.values_list("action", flat=True)) == [
        "account.created",
        "account.enrolment_link_sent",
    ]
    sent = events.last()
    assert sent.details == {"link": issued.link.pk}
    assert (sent.target_type, sent.target_id) == ("dienstweg.user", str(issued.link.user.pk))
    stored = repr(list(AuditEvent.objects.values()))
    assert "nina@example.org" not in stored and "Nina" not in stored
    assert token_of(issued) not in stored


# The token is stored only as a hash


def test_the_database_holds_only_the_hash_of_the_token(db):
    issued = new_account()
    token = token_of(issued)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM dienstweg_enrolmentlink")
        rows = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert token not in rows
    assert hashlib.sha256(token.encode()).hexdigest() in rows
    assert len(token) >= 43  # 256 random bits


# The e-mail


def test_the_link_is_queued_by_the_action_and_mailed_by_the_sender_with_nothing_else(
    db, mailoutbox, send_outbox
):
    issued = new_account()
    assert not mailoutbox  # the action only queued it
    [mail] = send_outbox()
    assert mail.to == ["nina@example.org"]
    assert mail.subject == "Dienstweg: Zugang einrichten"
    assert issued.url in mail.body
    assert issued.url.startswith("http://")
    assert "Nina" not in mail.body and "Neu" not in mail.body.replace("neuen", "")
    assert "nina@example.org" not in mail.body
    assert "gilt einmal" in mail.body


def test_the_link_follows_the_base_url(db, settings):
    settings.DIENSTWEG_BASE_URL = "https://dienstweg.example.org"
    issued = new_account()
    assert issued.url.startswith("https://dienstweg.example.org/zugang/")


# Single use, expiry, newer links


def test_a_link_works_once(db):
    issued = new_account()
    enrol_through(issued)
    assert enrolment_link_by_token(token_of(issued)) is None
    with pytest.raises(actions.InvalidLink):
        enrol_through(issued, password="Ganz-anderes-Passwort-7")
    user = User.objects.get(pk=issued.link.user.pk)
    assert user.check_password(NEW_PASSWORD)
    assert AuthenticatorDevice.objects.filter(user=user, confirmed=True).count() == 1


def test_a_link_expires_after_72_hours(db):
    start = timezone.now()
    issued = new_account(now=start)
    almost = start + timedelta(hours=72) - timedelta(seconds=1)
    assert enrolment_link_by_token(token_of(issued), now=almost) == issued.link
    assert enrolment_link_by_token(token_of(issued), now=start + timedelta(hours=72)) is None
    with pytest.raises(actions.InvalidLink):
        enrol_through(issued, now=start + timedelta(hours=72))
    user = User.objects.get(pk=issued.link.user.pk)
    assert not user.has_usable_password()
    assert not AuthenticatorDevice.objects.filter(user=user, confirmed=True).exists()


def test_an_expired_link_still_enrols_within_its_time(db):
    start = timezone.now() - timedelta(hours=71)
    issued = new_account(now=start)
    assert len(enrol_through(issued)) == 10


def test_a_newer_link_voids_the_older_one(db):
    first = new_account()
    second = actions.send_enrolment_link(first.link.user, by=None)
    assert enrolment_link_by_token(token_of(first)) is None
    assert enrolment_link_by_token(token_of(second)) == second.link
    with pytest.raises(actions.InvalidLink):
        enrol_through(first)
    assert len(enrol_through(second)) == 10


def test_used_expired_and_unknown_links_get_the_same_page(db):
    used = new_account()
    enrol_through(used)
    expired = actions.create_account(
        "olga@example.org", full_name="Olga Alt", by=None, now=timezone.now() - timedelta(days=4)
    )
    pages = []
    for token in (token_of(used), token_of(expired), "x" * 43):
        response = Client().get(f"/zugang/{token}/")
        assert response.status_code == 404
        main = response.content.decode().split("<main")[1].split("</main>")[0]
        pages.append(main)
    assert pages[0] == pages[1] == pages[2]
    assert INVALID in pages[0]
    assert not AuthenticatorDevice.objects.filter(user=expired.link.user).exists()


def test_a_deactivated_account_cannot_use_its_link(db):
    issued = new_account()
    actions.deactivate_staff(issued.link.user, by=None)
    assert Client().get(issued.url.replace("http://127.0.0.1:8000", "")).status_code == 404


def test_five_wrong_passwords_void_a_lost_factor_link(network, device):
    lead = actions.create_staff("lena@example.org", full_name="Lena Leitung", password=PASSWORD)
    actions.add_membership(lead, agency=network.project, role="lead", by=None)
    issued = actions.reset_second_factor(network.anna, by=lead)
    pending = actions.pending_authenticator(network.anna, device_id=None)
    for _attempt in range(actions.lifecycle.LINK_PASSWORD_ATTEMPTS):
        AuthenticatorDevice.objects.filter(pk=pending.pk).update(throttling_failure_count=0)
        with pytest.raises(actions.EnrolmentRefused, match="Passwort stimmt nicht"):
            actions.enrol_by_link(
                issued.link, device=pending, password="geraten-123456", token=current_code(pending)
            )
    assert enrolment_link_by_token(token_of(issued)) is None
    with pytest.raises(actions.InvalidLink):
        actions.enrol_by_link(
            issued.link, device=pending, password=PASSWORD, token=current_code(pending)
        )


# Resending a link


def test_admin_resends_a_link_to_an_account_that_has_not_enrolled(db):
    admin = ada()
    issued = new_account(by=admin)
    again = actions.send_enrolment_link(issued.link.user, by=admin)
    assert again.link.purpose == EnrolmentLink.Purpose.ENROL
    assert AuditEvent.objects.filter(action="account.enrolment_link_sent").count() == 2


def test_no_link_for_an_account_that_has_enrolled(network):
    enrol(network.anna)
    with pytest.raises(actions.ActionError, match="schon eingerichtet"):
        actions.send_enrolment_link(network.anna, by=ada())
    assert not EnrolmentLink.objects.exists()


def test_only_admins_resend_links(network):
    issued = new_account()
    with pytest.raises(actions.NotAllowed):
        actions.send_enrolment_link(issued.link.user, by=network.clara)
    assert EnrolmentLink.objects.count() == 1


def test_a_password_someone_else_chose_is_voided_by_a_new_link(network):
    """Anna's account is from before links: an admin chose her password."""
    actions.send_enrolment_link(network.anna, by=ada())
    network.anna.refresh_from_db()
    assert not network.anna.has_usable_password()
