"""The Django admin (/admin/) asks for the second factor like every other page."""

from __future__ import annotations

import pytest
from django.test import Client

from dienstweg.models import User
from tests.conftest import PASSWORD, enrol, verified_client
from tests.dienstweg.signin import ENROL_URL, VERIFY_URL, next_code, password_login

ADMIN_INDEX = "Einrichtungen, Konten und Verzeichnis"


@pytest.fixture
def ada(db) -> User:
    """The platform operator: staff and superuser."""
    return User.objects.create_superuser("ada@example.org", PASSWORD, full_name="Ada Admin")


def test_verified_superuser_sees_the_admin_index(ada):
    response = verified_client(ada).get("/admin/")
    assert response.status_code == 200
    assert ADMIN_INDEX in response.content.decode()


def test_superuser_after_password_only_is_sent_to_the_code_prompt(ada):
    enrol(ada)
    client = Client()
    password_login(client, ada.email)
    for path in ["/admin/", "/admin/dienstweg/user/", f"/admin/dienstweg/user/{ada.pk}/change/"]:
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith(VERIFY_URL)


def test_superuser_without_device_is_sent_to_enrolment(ada):
    client = Client()
    client.force_login(ada)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(ENROL_URL)


def test_unverified_superuser_cannot_run_admin_actions(network, ada):
    enrol(ada)
    client = Client()
    password_login(client, ada.email)
    client.post(
        "/admin/dienstweg/user/",
        {"action": "deactivate", "_selected_action": [network.anna.pk]},
    )
    network.anna.refresh_from_db()
    assert network.anna.is_active


def test_superuser_reaches_the_admin_after_entering_the_code(ada):
    device = enrol(ada)
    client = Client()
    response = client.get("/admin/")
    response = client.post(response["Location"], {"username": ada.email, "password": PASSWORD})
    assert response["Location"] == f"{VERIFY_URL}?next=%2Fadmin%2F"
    response = client.post(response["Location"], {"token": next_code(device)})
    assert response["Location"] == "/admin/"
    response = client.get("/admin/")
    assert response.status_code == 200
    assert ADMIN_INDEX in response.content.decode()


def test_admin_login_form_does_not_bypass_the_second_factor(ada):
    enrol(ada)
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": ada.email, "password": PASSWORD, "next": "/admin/"},
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/anmelden/")
    assert client.get("/admin/").status_code == 302
    assert ADMIN_INDEX not in client.get("/admin/", follow=True).content.decode()


def test_verified_staff_without_admin_rights_does_not_see_the_admin(network):
    response = verified_client(network.anna).get("/admin/", follow=True)
    assert ADMIN_INDEX not in response.content.decode()
