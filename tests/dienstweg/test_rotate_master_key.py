import base64
import io
import os

from django.core.management import call_command

from audit.models import AuditEvent
from dienstweg.models import DataKey
from tests.conftest import member


def test_rewraps_every_data_key_and_data_stays_readable(family, consent, settings):
    before = DataKey.objects.count()
    settings.VAULT_MASTER_KEYS = {1: settings.VAULT_MASTER_KEYS[1], 2: os.urandom(32)}
    out = io.StringIO()
    call_command("rotate_master_key", "--batch-size", "1", stdout=out)
    assert set(DataKey.objects.values_list("master_version", flat=True)) == {2}
    assert DataKey.objects.count() == before
    assert "100%" in out.getvalue()
    # The old master key can go: everything is readable with the new one alone.
    settings.VAULT_MASTER_KEYS = {2: settings.VAULT_MASTER_KEYS[2]}
    family.refresh_from_db()
    assert member(family, "Ayşe").decrypt_field("last_name") == "Yılmaz"
    assert AuditEvent.objects.filter(action="vault.data_keys_rewrapped").exists()


def test_second_run_has_nothing_to_do(family, settings):
    settings.VAULT_MASTER_KEYS = {**settings.VAULT_MASTER_KEYS, 2: os.urandom(32)}
    call_command("rotate_master_key", stdout=io.StringIO())
    out = io.StringIO()
    call_command("rotate_master_key", stdout=out)
    assert "0 Datenschlüssel" in out.getvalue()


def test_master_keys_setting_parses_versions():
    from config.settings import parse_master_keys

    key = base64.b64encode(b"k" * 32).decode()
    assert parse_master_keys(f"1:{key}, 3:{key}") == {1: b"k" * 32, 3: b"k" * 32}
