"""The trail's head, anchored outside the database: one line per seal in an append-only
file and in the journal; audit_verify compares the chain with the anchored heads, with
the head of its own previous run and with heads the DPO noted, so removing the newest
seals together with their events is found like any other change."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from audit import anchor, receipt, sealing, signing
from audit.models import AuditEvent, AuditSeal
from audit.pruning import remove_expired
from audit.retention import expired_q
from audit.verify import ANCHOR, HEAD, SEAL, TAIL, ExpectedHead, verify
from tests.audit.helpers import (
    record_committed,
    seal_all,
    triggers_lifted,
    unsealed_count,
    wait_until_final,
)


def sealed_trail(seals: int = 3, per_seal: int = 4) -> list[AuditSeal]:
    record_committed(seals * per_seal)
    return seal_all(batch_size=per_seal)


def heads(settings) -> list[dict[str, object]]:
    path = Path(settings.AUDIT_ANCHOR_DIR) / anchor.HEADS
    return [json.loads(line) for line in path.read_text().splitlines()]


def remove_newest_seal_with_its_events(cursor) -> AuditSeal:
    """What the database's owner can do: the newest seal and the events it covers go."""
    newest = AuditSeal.objects.order_by("-number").first()
    assert newest is not None
    cursor.execute(
        "DELETE FROM audit_auditevent WHERE id > %s",
        [newest.after_event_id or 0],
    )
    cursor.execute("DELETE FROM audit_auditseal WHERE number = %s", [newest.number])
    return newest


def kinds(report) -> set[str]:
    return {finding.kind for finding in report.findings}


# The anchor: one line per seal, in the file and in the journal ----------------------------


def test_each_seal_appends_one_signed_head_line(trail: None, settings) -> None:
    seals = sealed_trail(3)
    lines = heads(settings)
    assert [line["number"] for line in lines] == [1, 2, 3]
    for seal, line in zip(seals, lines, strict=True):
        assert line["seal_hash"] == seal.seal_hash
        assert line["previous_hash"] == seal.previous_hash
        assert line["signature"] == seal.signature
        assert line["last_event_id"] == seal.last_event_id
        assert "adopted" not in line
        signing.public_key().verify(
            bytes.fromhex(str(line["signature"])), bytes.fromhex(str(line["seal_hash"]))
        )
    # Only hashes, numbers and times: nothing of an event.
    assert set(lines[0]) == {
        "number",
        "seal_hash",
        "previous_hash",
        "sealed_at",
        "event_count",
        "last_event_id",
        "key_id",
        "signature",
        "anchored_at",
    }


def test_each_head_also_goes_to_the_journal(trail: None, caplog) -> None:
    record_committed(2)
    with caplog.at_level(logging.INFO, logger="audit.anchor"):
        (seal,) = seal_all()
    [message] = [r.getMessage() for r in caplog.records if r.name == "audit.anchor"]
    assert message.startswith("Protokollkopf verankert: {")
    assert json.loads(message.split(": ", 1)[1])["seal_hash"] == seal.seal_hash


def test_journal_gets_the_heads_whatever_the_root_level(settings) -> None:
    assert settings.LOGGING["loggers"]["audit.anchor"]["level"] == "INFO"


def test_untouched_trail_passes_against_its_anchor(trail: None) -> None:
    sealed_trail(3)
    report = verify()
    assert report.ok, report.lines()
    assert report.anchored_number == 3
    assert report.lines()[-1].startswith("Außerhalb der Datenbank verankert: bis Siegel Nr. 3")


# Removing the newest seal with its events --------------------------------------------------


def test_newest_seal_removed_with_its_events_is_a_missing_tail(trail: None) -> None:
    sealed_trail(3)
    with triggers_lifted() as cursor:
        removed = remove_newest_seal_with_its_events(cursor)
    report = verify()
    assert not report.ok
    [finding] = report.findings
    assert finding.kind == TAIL
    assert finding.seal == removed.number
    assert finding.text.startswith(
        f"Siegel 3 fehlt in der Datenbank, ist aber außerhalb verankert (Hash "
        f"{removed.seal_hash[:16]}…"
    )
    assert "4 Ereignisse bis Nr." in finding.text
    assert finding.text.endswith("das Ende des Protokolls wurde entfernt.")


@pytest.mark.postgres
def test_table_owner_disabling_the_triggers_cannot_cut_the_tail_unseen(trail: None) -> None:
    """The attack as the tables' owner runs it: ALTER TABLE ... DISABLE TRIGGER ALL, delete
    the newest seal and its events, enable the triggers again."""
    sealed_trail(3)
    newest = AuditSeal.objects.get(number=3)
    with connection.cursor() as cursor:
        for table in ("audit_auditevent", "audit_auditseal"):
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        try:
            cursor.execute(
                "DELETE FROM audit_auditevent WHERE (txid, id) > (%s, %s)",
                [newest.after_txid, newest.after_event_id],
            )
            cursor.execute("DELETE FROM audit_auditseal WHERE number = 3")
        finally:
            for table in ("audit_auditevent", "audit_auditseal"):
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")
    out = StringIO()
    with pytest.raises(CommandError, match="Prüfung NICHT bestanden: 1 Befund"):
        call_command("audit_verify", stdout=out)
    assert "  Siegel 3 fehlt in der Datenbank, ist aber außerhalb verankert" in out.getvalue()
    # And the sealer does not build a new seal 3 over the gap.
    record_committed(2)
    wait_until_final()  # no transaction elsewhere in the cluster holds the fence back
    with pytest.raises(anchor.AnchorMismatch, match="die Datenbank endet bei Siegel 2"):
        sealing.seal_pending()
    assert AuditSeal.objects.count() == 2


def test_sealer_stops_on_a_shortened_chain_and_says_why(trail: None) -> None:
    sealed_trail(2)
    with triggers_lifted() as cursor:
        remove_newest_seal_with_its_events(cursor)
    record_committed(3)
    with pytest.raises(CommandError, match="Anker und Datenbank passen nicht zusammen"):
        call_command("audit_seal", stdout=StringIO())
    assert AuditSeal.objects.count() == 1
    assert unsealed_count() == 3  # left for the operator, not sealed over the gap


def test_replaced_newest_seal_differs_from_its_anchored_head(trail: None) -> None:
    sealed_trail(2)
    with triggers_lifted() as cursor:
        cursor.execute("UPDATE audit_auditseal SET seal_hash = %s WHERE number = 2", ["e" * 64])
    texts = [(finding.kind, finding.text) for finding in verify().findings]
    assert (
        TAIL,
        "Siegel 2: weicht vom außerhalb der Datenbank verankerten Kopf ab (verankert "
        f"{heads_of_number(2)}, in der Datenbank {'e' * 64}): das Protokoll wurde ab hier "
        "ersetzt.",
    ) in texts


def heads_of_number(number: int) -> str:
    head = next(line.head for line in anchor.read() if line.head and line.head.number == number)
    assert head is not None
    return head.seal_hash


# The head of the previous run --------------------------------------------------------------


def test_previous_run_head_names_a_missing_tail_even_without_the_file(
    trail: None, settings
) -> None:
    sealed_trail(3)
    call_command("audit_verify", stdout=StringIO())  # remembers seal 3
    state = json.loads((Path(settings.AUDIT_ANCHOR_DIR) / anchor.VERIFIED).read_text())
    assert state["number"] == 3
    (Path(settings.AUDIT_ANCHOR_DIR) / anchor.HEADS).unlink()  # compare with the state alone
    with triggers_lifted() as cursor:
        remove_newest_seal_with_its_events(cursor)
    report = verify()
    tail = [finding.text for finding in report.findings if finding.kind == TAIL]
    assert len(tail) == 1
    assert tail[0].startswith("Die vorige Prüfung (")
    assert tail[0].endswith(
        f"sah Siegel 3 (Hash {state['seal_hash']}); die Datenbank endet bei Siegel 2: das "
        "Ende des Protokolls wurde entfernt."
    )


def test_previous_run_head_is_kept_while_the_tail_is_missing(trail: None, settings) -> None:
    sealed_trail(3)
    call_command("audit_verify", stdout=StringIO())
    with triggers_lifted() as cursor:
        remove_newest_seal_with_its_events(cursor)
    for _run in range(2):  # the second run still reports it: the state did not move back
        with pytest.raises(CommandError):
            call_command("audit_verify", stdout=StringIO())
    state = json.loads((Path(settings.AUDIT_ANCHOR_DIR) / anchor.VERIFIED).read_text())
    assert state["number"] == 3


def test_head_of_a_run_with_findings_is_not_remembered(trail: None, settings) -> None:
    events = record_committed(4)
    seal_all(batch_size=2)
    call_command("audit_verify", stdout=StringIO())
    record_committed(2)
    seal_all()
    with triggers_lifted() as cursor:
        cursor.execute("UPDATE audit_auditevent SET actor_id = 99 WHERE id = %s", [events[0].id])
    with pytest.raises(CommandError):
        call_command("audit_verify", stdout=StringIO())
    remembered = anchor.last_verified()
    assert remembered is not None
    assert remembered.number == 2


# Anchoring fails, and catches up ------------------------------------------------------------


def test_seal_whose_head_cannot_be_written_is_named_and_anchored_next_round(
    trail: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sealed_trail(1)
    record_committed(2)
    wait_until_final()  # no transaction elsewhere in the cluster holds the fence back

    def disk_full(handle: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(anchor.os, "write", disk_full)
        with pytest.raises(anchor.AnchorError, match="Kopf von Siegel 2 konnte nicht"):
            sealing.seal_pending()
    assert AuditSeal.objects.count() == 2  # committed, but not anchored
    report = verify()
    assert [(f.kind, f.seal) for f in report.findings] == [(ANCHOR, 2)]
    assert report.findings[0].text.startswith(
        "Siegel 2 ist nicht außerhalb der Datenbank verankert"
    )
    record_committed(1)
    seal_all()  # anchors seal 2 first, then seals on
    assert [line.head.number for line in anchor.read() if line.head] == [1, 2, 3]
    assert verify().ok


def test_sealer_refuses_when_the_anchor_directory_is_unusable(trail: None, settings) -> None:
    blocker = Path(settings.AUDIT_ANCHOR_DIR)
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the directory should be")
    record_committed(2)
    wait_until_final()  # no transaction elsewhere in the cluster holds the fence back
    with pytest.raises(anchor.AnchorError, match="Anker-Verzeichnis"):
        sealing.seal_pending()
    assert not AuditSeal.objects.exists()


def test_anchoring_begins_by_adopting_the_databases_head(trail: None, settings) -> None:
    """A trail sealed before anchoring existed (or under another directory): the first
    seal anchors the database's head first, marked as adopted, then its own."""
    sealed_trail(2)
    settings.AUDIT_ANCHOR_DIR = Path(settings.AUDIT_ANCHOR_DIR).with_name("later-anchor")
    report = verify()
    assert [f.kind for f in report.findings] == [ANCHOR]
    assert report.findings[0].text.startswith("Kein Kopf außerhalb der Datenbank verankert")
    record_committed(1)
    seal_all()
    lines = heads(settings)
    assert [(line["number"], line.get("adopted", False)) for line in lines] == [
        (2, True),
        (3, False),
    ]
    assert verify().ok


def test_unreadable_line_in_the_anchor_is_named(trail: None, settings) -> None:
    sealed_trail(1)
    with (Path(settings.AUDIT_ANCHOR_DIR) / anchor.HEADS).open("ab") as handle:
        handle.write(b"kein Kopf\n")
    report = verify()
    assert [f.kind for f in report.findings] == [ANCHOR]
    assert report.findings[0].text.endswith("Zeile 2 ist kein Protokollkopf.")


def test_anchored_head_with_a_forged_signature_is_not_taken_for_a_missing_tail(
    trail: None, settings
) -> None:
    (seal,) = sealed_trail(1)
    forged = anchor.Head(
        number=2,
        seal_hash="a" * 64,
        previous_hash=seal.seal_hash,
        sealed_at=seal.sealed_at.isoformat(),
        event_count=1,
        last_event_id=seal.last_event_id + 1,
        key_id=seal.key_id,
        signature="b" * 128,
    )
    anchor.append(forged)
    report = verify()
    assert [(f.kind, f.seal) for f in report.findings] == [(ANCHOR, 2)]
    assert "mit ungültiger Signatur verankert" in report.findings[0].text


def test_pruning_never_touches_what_is_anchored(trail: None) -> None:
    """Pruning removes events, never seals: the anchored heads stay in the chain."""
    record_committed(4, action="auth.login_failed")
    seal_all(batch_size=2)
    later = timezone.now() + timedelta(days=365)  # every login has expired by then
    assert remove_expired(expired_q(later)).removed == 4
    report = verify()
    assert report.ok, report.lines()
    assert report.anchored_number == 2


# Heads the DPO noted: --expect-head with a hash or a Prüfquittung --------------------------


def test_expected_head_in_the_chain_passes(trail: None) -> None:
    seals = sealed_trail(3)
    out = StringIO()
    call_command("audit_verify", "--expect-head", seals[1].seal_hash.upper(), stdout=out)
    assert out.getvalue().startswith("Prüfung bestanden")


def test_foreign_expected_head_fails(trail: None) -> None:
    sealed_trail(2)
    out = StringIO()
    with pytest.raises(CommandError, match="1 Befund"):
        call_command("audit_verify", "--expect-head", "c" * 64, stdout=out)
    assert (
        f"  Erwarteter Kopf {'c' * 64}: Kopf {'c' * 64} ist nicht in der Siegelkette der "
        "Datenbank: das Protokoll wurde danach gekürzt oder ersetzt."
    ) in out.getvalue().splitlines()


def test_expected_head_beyond_a_cut_fails_even_with_the_anchor_gone(trail: None, settings) -> None:
    seals = sealed_trail(3)
    noted = seals[-1].seal_hash
    (Path(settings.AUDIT_ANCHOR_DIR) / anchor.HEADS).unlink()
    with triggers_lifted() as cursor:
        remove_newest_seal_with_its_events(cursor)
    report = verify(expected=[])
    assert TAIL not in kinds(report)  # nothing outside the database remembers it ...
    with pytest.raises(CommandError):
        call_command("audit_verify", "--expect-head", noted, stdout=StringIO())
    assert HEAD in kinds(verify(expected=[_expected(noted)]))  # ... but the DPO's note does


def _expected(seal_hash: str) -> ExpectedHead:
    return ExpectedHead(seal_hash)


def write_receipt(tmp_path: Path) -> Path:
    issued = receipt.issue()
    assert issued is not None
    path = tmp_path / f"pruefquittung-siegel-{issued['seal']}.json"
    path.write_bytes(receipt.dumps(issued))
    return path


def test_receipt_file_checks_its_head_and_signature(trail: None, tmp_path: Path) -> None:
    sealed_trail(2)
    path = write_receipt(tmp_path)
    printed = StringIO()
    call_command("audit_public_key", stdout=printed)
    public = printed.getvalue().splitlines()[1].rsplit(" ", 1)[1]
    out = StringIO()
    call_command("audit_verify", "--expect-head", str(path), "--public-key", public, stdout=out)
    assert out.getvalue().startswith("Prüfung bestanden")
    # With a key the DPO never noted, the receipt proves nothing.
    stranger = signing.public_base64(signing.public_key(signing.new_private_key()))
    out = StringIO()
    with pytest.raises(CommandError):
        call_command(
            "audit_verify", "--expect-head", str(path), "--public-key", stranger, stdout=out
        )
    assert f"  Prüfquittung {path.name} (Siegel 2): mit dem Schlüssel" in out.getvalue()


def test_changed_receipt_fails_its_signature(trail: None, tmp_path: Path) -> None:
    seals = sealed_trail(2)
    path = write_receipt(tmp_path)
    changed = json.loads(path.read_text())
    changed["seal"], changed["seal_hash"] = 1, seals[0].seal_hash
    path.write_text(json.dumps(changed))
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("audit_verify", "--expect-head", str(path), stdout=out)
    assert "Signatur ungültig: die Quittung wurde verändert" in out.getvalue()


def test_receipt_of_a_removed_head_fails(trail: None, tmp_path: Path) -> None:
    sealed_trail(3)
    path = write_receipt(tmp_path)
    with triggers_lifted() as cursor:
        remove_newest_seal_with_its_events(cursor)
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("audit_verify", "--expect-head", str(path), stdout=out)
    assert f"  Prüfquittung {path.name} (Siegel 3): Kopf " in out.getvalue()


def test_expect_head_that_is_neither_hash_nor_receipt_is_refused(trail: None) -> None:
    with pytest.raises(CommandError, match="weder ein Siegel-Hash"):
        call_command("audit_verify", "--expect-head", "12345", stdout=StringIO())


def test_receipt_refuses_a_seal_that_does_not_verify(trail: None) -> None:
    sealed_trail(1)
    with triggers_lifted() as cursor:
        cursor.execute("UPDATE audit_auditseal SET event_count = 99")
    with pytest.raises(receipt.ReceiptError, match="Siegel 1 lässt sich nicht bestätigen"):
        receipt.issue()


def test_no_receipt_before_the_first_seal(trail: None) -> None:
    assert receipt.issue() is None


def test_anchor_holds_no_event_content(trail: None, settings) -> None:
    record_committed(3, details={"consent_id": 4711}, purpose="Art. 15 DSGVO")
    seal_all()
    lines = (Path(settings.AUDIT_ANCHOR_DIR) / anchor.HEADS).read_text().splitlines()
    digests = ("seal_hash", "previous_hash", "key_id", "signature")
    for head in map(json.loads, lines):
        # A head's fields, nothing of an event's; the digests are random hex and may hold
        # "4711" by chance, so the substring check reads the other fields.
        assert set(head) <= {*digests, "number", "sealed_at", "event_count", "last_event_id",
                             "anchored_at", "adopted"}  # fmt: skip
        rest = json.dumps({k: v for k, v in head.items() if k not in digests})
        assert "4711" not in rest and "DSGVO" not in rest
    assert AuditEvent.objects.count() == 3
    assert SEAL not in kinds(verify())
