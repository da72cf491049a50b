import io
from urllib.parse import urlsplit

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from dienstweg.demo import AGENCIES, DEMO_PASSWORD, PEOPLE, load_demo
from dienstweg.models import (
    Agency,
    BackupCode,
    Contact,
    Location,
    Membership,
    MembershipProposal,
    Service,
    StaffSession,
    User,
)
from tests.dienstweg.signin import is_verified_in, password_login, submit_code


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Agency, Location, Service, Contact, User, Membership, BackupCode)
    }


@pytest.mark.django_db
def test_loading_twice_duplicates_nothing():
    load_demo()
    first = counts()
    load_demo()
    assert counts() == first
    # conferences' demo adds a second project and its coach, for the report's figures.
    assert first["Agency"] == len(AGENCIES) + 1
    assert first["User"] == len(PEOPLE) + 1


@pytest.mark.django_db
def test_demo_has_every_role_and_the_gladbeck_network():
    load_demo()
    roles = set(Membership.objects.values_list("role", flat=True))
    # Every role but the network's DPO, which two admins confirm (none in the demo).
    assert set(Membership.Role.values) - roles <= {Membership.Role.NETWORK_DPO}
    names = " ".join(Agency.objects.values_list("name", flat=True))
    for expected in (
        "Jobcenter",
        "Jugend und Familie",
        "Soziales und Wohnen",
        "Migration",
        "rebeq",
        "Rotes Kreuz",
        "Mädchenzentrum",
        "Familienkasse",
    ):
        assert expected in names
    assert all(agency.memberships.filter(role="lead").exists() for agency in Agency.objects.all())


@pytest.mark.django_db
def test_the_operator_holds_no_case_role_and_nothing_waits_for_a_second_person():
    load_demo()
    tom = User.objects.get(email__startswith="tom@")
    assert tom.is_staff and tom.is_superuser
    assert set(tom.memberships.values_list("role", flat=True)) == {Membership.Role.ADMIN}
    # Every other account is case staff or DPO, without admin rights.
    assert not User.objects.exclude(pk=tom.pk).filter(is_staff=True).exists()
    assert not User.objects.exclude(pk=tom.pk).filter(is_superuser=True).exists()
    # Demo roles are given already confirmed: nothing is pending after loading (twice).
    load_demo()
    assert not MembershipProposal.objects.exists()


@pytest.mark.django_db
def test_printed_backup_code_logs_in(settings):
    settings.DEBUG = True
    anna = next(login for login in load_demo() if login.email.startswith("anna@"))
    client = Client()
    response = client.post("/anmelden/", {"username": anna.email, "password": DEMO_PASSWORD})
    assert response.status_code == 302 and "/zweiter-faktor/" in response["Location"]
    response = client.post("/zweiter-faktor/", {"token": anna.backup_code})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert StaffSession.objects.filter(user__email=anna.email).exists()


@pytest.mark.django_db
def test_refuses_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("load_demo")
    assert User.objects.count() == 0


@pytest.mark.django_db
def test_demo_totp_refuses_real_accounts(settings):
    settings.DEBUG = True
    load_demo()
    User.objects.create_user("real@stadt-gladbeck.de", "x" * 16, full_name="Echt")
    with pytest.raises(CommandError):
        call_command("demo_totp", "real@stadt-gladbeck.de")


def demo_code(email: str) -> str:
    output = io.StringIO()
    call_command("demo_totp", email, stdout=output)
    return output.getvalue().strip()


@pytest.mark.django_db
def test_demo_totp_gives_each_login_within_one_step_a_code_of_its_own(settings, clock):
    # A code works once; the browser tests log the same demo account in twice in 30 s.
    settings.DEBUG = True
    load_demo()
    anna = "anna@demo.dienstweg.invalid"
    codes = []
    for _login in range(3):
        client = Client()
        password_login(client, anna, password=DEMO_PASSWORD)
        codes.append(demo_code(anna))
        assert submit_code(client, codes[-1]).status_code == 302
        assert is_verified_in(client)
    assert len(set(codes)) == 3


@pytest.mark.django_db
def test_nora_starts_with_a_printed_link_instead_of_a_password(settings, capsys):
    settings.DEBUG = True
    call_command("load_demo")
    printed = capsys.readouterr().out
    nora = User.objects.get(email="nora@demo.dienstweg.invalid")
    assert not nora.has_usable_password()
    assert (
        Client().post("/anmelden/", {"username": nora.email, "password": DEMO_PASSWORD}).status_code
        == 200
    )  # the demo password is not hers
    [link] = [line.strip() for line in printed.splitlines() if "/zugang/" in line]
    response = Client().get(urlsplit(link).path)
    assert response.status_code == 200
    assert "Zugang einrichten" in response.content.decode()


@pytest.mark.django_db
def test_each_load_prints_a_new_link_for_nora_and_voids_the_last(settings):
    settings.DEBUG = True
    first = next(login for login in load_demo() if login.email.startswith("nora@"))
    second = next(login for login in load_demo() if login.email.startswith("nora@"))
    assert first.enrolment_link and second.enrolment_link
    assert first.enrolment_link != second.enrolment_link
    assert Client().get(urlsplit(first.enrolment_link).path).status_code == 404
    assert Client().get(urlsplit(second.enrolment_link).path).status_code == 200
    others = [login for login in load_demo() if not login.email.startswith("nora@")]
    assert all(login.enrolment_link is None and login.totp_secret for login in others)


@pytest.mark.django_db
def test_the_printed_demo_totp_command_starts_in_a_fresh_shell(settings, capsys, tmp_path):
    # As the banner prints it, typed into a new shell (no DIENSTWEG_* variables of `make
    # run`): it must reach the command, not end in the settings' traceback.
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    settings.DEBUG = True
    call_command("load_demo")
    [printed] = re.findall(r"`([^`]*demo_totp) E-MAIL`", capsys.readouterr().out)
    variables, command = printed.split(" .venv/bin/python ")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIENSTWEG_")}
    env.update(dict(pair.split("=", 1) for pair in variables.split()))
    env["DIENSTWEG_DATA_DIR"] = str(tmp_path)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(  # noqa: S603 (our own manage.py, the banner's words)
        [sys.executable, *command.split(), "--help"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
