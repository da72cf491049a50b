"""The Prüfquittung: the DPO downloads a signed receipt of the trail's current head from the
console, keeps it, and later checks it with `audit_verify --expect-head`; the download is
audited. The console's status also names events the sealer refused as dated out of order."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit import receipt, signing
from audit.models import AuditEvent, AuditSeal
from audit.verify import keyring
from dienstweg.models import Membership
from tests.audit.helpers import record_committed, seal_all, triggers_lifted
from tests.audit.test_chronology import insert_as_table_owner
from tests.conftest import Network, make_staff, verified_client

pytestmark = pytest.mark.usefixtures("committed")


def download(client: Client) -> dict[str, object]:
    response = client.get(reverse("console:receipt"))
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json; charset=utf-8"
    return json.loads(response.content)


def test_dpo_downloads_a_signed_receipt_of_the_current_head(
    network: Network, dora_client: Client
) -> None:
    record_committed(3)
    seal_all()
    head = AuditSeal.objects.order_by("-number").first()
    assert head is not None
    response = dora_client.get(reverse("console:receipt"))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith(
        f'attachment; filename="pruefquittung-siegel-{head.number}-'
    )
    issued = json.loads(response.content)
    assert (issued["seal"], issued["seal_hash"]) == (head.number, head.seal_hash)
    assert issued["key_id"] == signing.key_id(signing.public_key())
    assert "audit_verify --expect-head" in issued["hint"]
    # The signature holds with the public key the DPO gets from audit_public_key.
    printed = StringIO()
    call_command("audit_public_key", stdout=printed)
    public = printed.getvalue().splitlines()[1].rsplit(" ", 1)[1]
    key: Ed25519PublicKey = signing.load_public_key(public)
    assert receipt.problem(issued, keyring([key])) is None
    content = {name: value for name, value in issued.items() if name != "signature"}
    key.verify(
        bytes.fromhex(str(issued["signature"])),
        receipt.DOMAIN
        + json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(),
    )


def test_download_is_audited(network: Network, dora_client: Client) -> None:
    record_committed(2)
    seal_all()
    issued = download(dora_client)
    event = AuditEvent.objects.get(action="console.receipt_downloaded")
    assert event.actor_id == network.dora.pk
    assert event.agency_id == network.jugendamt.pk
    assert event.details == {"seal": issued["seal"]}
    assert (event.target_type, event.target_id) == ("audit.auditseal", str(issued["seal"]))


def test_receipt_checks_out_with_audit_verify_until_the_tail_is_cut(
    network: Network, dora_client: Client, tmp_path: Path
) -> None:
    record_committed(4)
    seal_all(batch_size=2)
    path = tmp_path / "quittung.json"
    path.write_text(json.dumps(download(dora_client)))
    seal_all()  # the download's own record, sealed after the receipt's head
    call_command("audit_verify", "--expect-head", str(path), stdout=StringIO())
    newest = AuditSeal.objects.order_by("-number").first()
    assert newest is not None
    covered = json.loads(path.read_text())["seal"]
    with triggers_lifted() as cursor:
        cursor.execute("DELETE FROM audit_auditseal WHERE number >= %s", [covered])
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("audit_verify", "--expect-head", str(path), stdout=out)
    assert f"Prüfquittung quittung.json (Siegel {covered}): Kopf" in out.getvalue()


def test_receipt_costs_the_same_queries_however_long_the_trail(
    network: Network, dora_client: Client
) -> None:
    record_committed(2)
    seal_all()
    download(dora_client)  # the session's first request does more
    with CaptureQueriesContext(connection) as short:
        download(dora_client)
    record_committed(40)
    seal_all(batch_size=4)
    with CaptureQueriesContext(connection) as longer:
        download(dora_client)
    assert len(longer) == len(short)


def test_without_a_seal_there_is_nothing_to_receipt(network: Network, dora_client: Client) -> None:
    assert not AuditSeal.objects.exists()
    response = dora_client.get(reverse("console:receipt"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("console:home")
    assert "Noch kein Siegel" in response.text
    assert not AuditEvent.objects.filter(action="console.receipt_downloaded").exists()
    assert "Prüfquittung herunterladen" not in response.text


def test_home_offers_the_receipt_in_one_sentence(network: Network, dora_client: Client) -> None:
    record_committed(1)
    seal_all()
    response = dora_client.get(reverse("console:home"))
    assert "Prüfquittung herunterladen" in response.text
    assert reverse("console:receipt") in response.text
    assert "audit_verify --expect-head" in response.text


def test_home_counts_the_last_seals_events_in_the_singular_too(
    network: Network, dora_client: Client
) -> None:
    record_committed(1)
    seal_all(batch_size=1)  # every seal holds one event
    response = dora_client.get(reverse("console:home"))
    assert "(1 Ereignis)" in response.text and "(1 Ereignisse)" not in response.text


def test_home_names_events_the_sealer_refused(network: Network, dora_client: Client) -> None:
    (first,) = record_committed(1)
    seal_all()
    forged = insert_as_table_owner(first, timezone.now() - timedelta(days=2))
    seal_all()
    refusing = AuditSeal.objects.filter(refused__isnull=False).exclude(refused=b"").get()
    response = dora_client.get(reverse("console:home"))
    assert "Bei der Versiegelung abgewiesen" in response.text
    assert f"Eintrag {forged} (Siegel {refusing.number})" in response.text
    # The finding names no acting agency: in the trail's search, the network's DPO finds it.
    vera = make_staff(
        "vera@example.org", "Vera Vogt", network.jobcenter, Membership.Role.NETWORK_DPO
    )
    found = verified_client(vera).get(reverse("console:search"), {"action": "audit.event_refused"})
    assert [row["event"].details["event"] for row in found.context["rows"]] == [forged]
    # "Jetzt prüfen" names it too, and fails.
    response = dora_client.post(reverse("console:verify"), follow=True)
    assert "Prüfung NICHT bestanden" in response.text
    assert "davon 1 abgewiesen" in response.text


def test_home_without_refusals_shows_none(network: Network, dora_client: Client) -> None:
    record_committed(1)
    seal_all()
    assert "Bei der Versiegelung abgewiesen" not in dora_client.get(reverse("console:home")).text
