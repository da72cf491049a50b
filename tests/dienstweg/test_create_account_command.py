"""manage.py create_account: the first admin (and any account) from the server's shell,
with a link, never a password."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from dienstweg.models import EnrolmentLink, User
from tests.conftest import enrol


@pytest.mark.django_db
def test_makes_the_first_admin_with_a_link(capsys, send_outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("create_account", "Tom@Stadt-Gladbeck.de", "--name", "Tom Technik", "--admin")
    out = capsys.readouterr().out
    tom = User.objects.get(email="tom@stadt-gladbeck.de")
    assert tom.is_staff and tom.is_superuser
    assert not tom.has_usable_password()
    assert "/zugang/" not in out  # the link goes to her mailbox only, unless asked
    [mail] = send_outbox()
    assert mail.to == ["tom@stadt-gladbeck.de"]


@pytest.mark.django_db
def test_prints_the_link_when_asked(capsys):
    call_command("create_account", "tom@stadt-gladbeck.de", "--name", "Tom", "--print-link")
    assert "/zugang/" in capsys.readouterr().out


@pytest.mark.django_db
def test_sends_a_new_link_to_an_account_that_has_not_enrolled():
    call_command("create_account", "nina@example.org", "--name", "Nina Neu")
    call_command("create_account", "nina@example.org")
    assert EnrolmentLink.objects.filter(user__email="nina@example.org").count() == 2
    assert EnrolmentLink.objects.filter(voided_at=None).count() == 1


def test_refuses_an_enrolled_account(network):
    enrol(network.anna)
    with pytest.raises(CommandError, match="schon eingerichtet"):
        call_command("create_account", network.anna.email)
