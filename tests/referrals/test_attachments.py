"""Attachments of referrals: uploaded through the referral page, PDF, PNG and JPEG only
(told by their first bytes, with a matching extension), encrypted in the database; forged
types, path names, oversized files and a sixth file are refused and nothing is stored; the
download is a saved file under our own name, never rendered, and audited; only those who
may open the referral get it.

Anna (coach at the project) sends to the Jobcenter, where Ben (caseworker) receives it;
Dirk (caseworker at the migration office) is the outsider."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from dienstweg.actions import ActionError
from dienstweg.models import DataCategory, Family
from dienstweg.uploads import Upload
from referrals.actions import steps as referral_steps
from referrals.models import Referral, ReferralAttachment
from tests.builders import build_referral
from tests.conftest import Network, verified_client

SECRET = b"Arbeitsvertrag Ayse Yilmaz, Horster Strasse 30"
PDF = b"%PDF-1.4\n% " + SECRET + b"\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + SECRET
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + SECRET
HTML = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>"


def upload(name: str, content: bytes, content_type: str = "application/pdf") -> Any:
    return SimpleUploadedFile(name, content, content_type=content_type)


def post_referral(client: Client, network: Network, family: Family, files: list[Any]) -> Any:
    return client.post(
        reverse("referral_new", args=[family.pk]),
        {
            "to_agency": network.jobcenter.pk,
            "need": "Arbeitsvermittlung in Teilzeit",
            "categories": ["employment"],
            "attachments": files,
            "send": "",
        },
    )


def refused_with(response: Any, message: str) -> None:
    """The form came back with MESSAGE, and nothing was stored."""
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Referral.objects.exists()
    assert not ReferralAttachment.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="referral.").exists()


def raw_attachment(attachment: ReferralAttachment) -> tuple[bytes, bytes]:
    """name_enc and content_enc as the database holds them (no model, no decryption)."""
    pk = ReferralAttachment._meta.pk.get_db_prep_value(attachment.pk, connection)  # type: ignore[union-attr]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name_enc, content_enc FROM referrals_referralattachment WHERE id = %s", [pk]
        )
        name, content = cursor.fetchone()
    return bytes(name), bytes(content)


def send_with(network: Network, family: Family, *uploads: Upload) -> Referral:
    return build_referral(
        network, family, summary="", categories=[DataCategory.EMPLOYMENT], attachments=uploads
    )


def download_url(referral: Referral, attachment: ReferralAttachment) -> str:
    return reverse("referral_attachment", args=[referral.pk, attachment.pk])


# Uploading


def test_pdf_png_and_jpeg_are_accepted_and_stored_encrypted(network, family, consent, anna_client):
    files = [
        upload("arbeitsvertrag-yilmaz.pdf", PDF),
        upload("zeugnis-yilmaz.png", PNG, "image/png"),
        upload("foto-yilmaz.JPEG", JPEG, "image/jpeg"),
    ]

    response = post_referral(anna_client, network, family, files)

    referral = Referral.objects.get()
    assert response.status_code == 302
    assert referral.state == Referral.State.SENT
    stored = {a.decrypt_field("name"): a for a in referral.attachments.all()}
    assert sorted(stored) == ["arbeitsvertrag-yilmaz.pdf", "foto-yilmaz.JPEG", "zeugnis-yilmaz.png"]
    for name, content, content_type in [
        ("arbeitsvertrag-yilmaz.pdf", PDF, "application/pdf"),
        ("zeugnis-yilmaz.png", PNG, "image/png"),
        ("foto-yilmaz.JPEG", JPEG, "image/jpeg"),
    ]:
        attachment = stored[name]
        assert attachment.content_type == content_type
        assert attachment.size == len(content)
        assert attachment.uploaded_by == network.anna
        assert attachment.decrypt_field_bytes("content") == content
        raw_name, raw_content = raw_attachment(attachment)
        assert raw_content and raw_name
        assert SECRET not in raw_content
        assert b"Yilmaz" not in raw_content
        assert b"yilmaz" not in raw_name


@pytest.mark.parametrize(
    ("name", "content", "claimed"),
    [
        ("brief.pdf", PNG, "application/pdf"),  # PNG bytes under a PDF name
        ("virus.exe", PDF, "application/pdf"),  # PDF bytes under a program's name
        ("seite.pdf", HTML, "application/pdf"),  # HTML that a browser would render
        ("bild.png", JPEG, "image/png"),
        ("scan.jpg", PDF, "image/jpeg"),
        ("ohne-endung", PDF, "application/pdf"),
    ],
)
def test_forged_type_is_refused_and_nothing_stored(
    network, family, consent, anna_client, name, content, claimed
):
    response = post_referral(anna_client, network, family, [upload(name, content, claimed)])

    refused_with(response, f"„{name}“: nur PDF, JPEG oder PNG mit passender Dateiendung.")


def test_one_forged_file_among_good_ones_stores_nothing(network, family, consent, anna_client):
    files = [upload("gut.pdf", PDF), upload("brief.pdf", HTML), upload("gut.png", PNG)]

    response = post_referral(anna_client, network, family, files)

    refused_with(response, "„brief.pdf“: nur PDF, JPEG oder PNG")


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd.pdf",
        "a/b.pdf",
        "..\\x.pdf",
        "C:\\Users\\ayse\\brief.pdf",
        "brief\x00.pdf",
        "brief\n.pdf",
        "brief\x1b[31m.pdf",
        "..pdf",
        "",
        "x" * 117 + ".pdf",
    ],
)
def test_path_and_control_names_are_refused_by_the_action(network, family, consent, name):
    # The action is the write path of every interface (page, messaging, commands).
    with pytest.raises(ActionError, match="Ungültiger Dateiname"):
        send_with(network, family, Upload(name=name, content=PDF))

    assert not Referral.objects.exists()
    assert not ReferralAttachment.objects.exists()


def multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    """A form body with the file name exactly as given (the test client would shorten it)."""
    boundary = "dienstweg-test-boundary"
    body = b""
    for key, value in fields.items():
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
        ).encode()
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="attachments"; '
        f'filename="{filename}"\r\nContent-Type: application/pdf\r\n\r\n'
    ).encode() + content
    body += f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("filename", ["../../etc/passwd.pdf", "a/passwd.pdf", "..\\passwd.pdf"])
def test_page_never_stores_a_path_as_the_file_name(network, family, consent, anna_client, filename):
    # Django's multipart parser keeps only the last path component before the form sees
    # it; whatever arrives, the stored name is a plain name.
    body, content_type = multipart(
        {
            "to_agency": str(network.jobcenter.pk),
            "need": "Arbeitsvermittlung",
            "categories": "employment",
            "send": "",
        },
        filename,
        PDF,
    )

    response = anna_client.post(
        reverse("referral_new", args=[family.pk]), body, content_type=content_type
    )

    assert response.status_code == 302
    assert ReferralAttachment.objects.get().decrypt_field("name") == "passwd.pdf"


def test_too_big_a_file_is_refused(network, family, consent, anna_client, settings):
    settings.ATTACHMENT_MAX_BYTES = 1024
    big = PDF + b"0" * 1024

    response = post_referral(anna_client, network, family, [upload("gross.pdf", big)])

    refused_with(response, "„gross.pdf“ ist zu groß")
    with pytest.raises(ActionError, match="ist zu groß"):
        send_with(network, family, Upload(name="gross.pdf", content=big))
    assert not Referral.objects.exists()


def test_a_file_at_the_size_limit_is_accepted(network, family, consent, anna_client, settings):
    settings.ATTACHMENT_MAX_BYTES = 1024
    exact = PDF + b"0" * (1024 - len(PDF))

    post_referral(anna_client, network, family, [upload("genau.pdf", exact)])

    assert ReferralAttachment.objects.get().size == 1024


def test_more_than_five_files_are_refused(network, family, consent, anna_client):
    files = [upload(f"seite-{n}.pdf", PDF) for n in range(6)]

    response = post_referral(anna_client, network, family, files)

    refused_with(response, "Höchstens 5 Anhänge.")


def test_five_files_are_accepted(network, family, consent, anna_client):
    files = [upload(f"seite-{n}.pdf", PDF) for n in range(5)]

    post_referral(anna_client, network, family, files)

    assert Referral.objects.get().attachments.count() == 5


# Downloading


@pytest.fixture
def sent(network, family, consent) -> Referral:
    """Sent to the Jobcenter with a PDF and a PNG."""
    return send_with(
        network,
        family,
        Upload(name="arbeitsvertrag-yilmaz.pdf", content=PDF),
        Upload(name="zeugnis yilmaz.png", content=PNG),
    )


def attachment_named(referral: Referral, name: str) -> ReferralAttachment:
    return next(a for a in referral.attachments.all() if a.decrypt_field("name") == name)


@pytest.mark.parametrize("who", ["anna", "ben"])
@pytest.mark.parametrize(
    ("name", "content", "content_type", "extension"),
    [
        ("arbeitsvertrag-yilmaz.pdf", PDF, "application/pdf", "pdf"),
        ("zeugnis yilmaz.png", PNG, "image/png", "png"),
    ],
)
def test_sender_and_receiver_download_under_our_own_name(
    network, family, sent, who, name, content, content_type, extension
):
    user = getattr(network, who)
    attachment = attachment_named(sent, name)

    response = verified_client(user).get(download_url(sent, attachment))

    assert response.status_code == 200
    assert response.content == content
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == (
        f'attachment; filename="anhang-{family.reference}.{extension}"'
    )
    assert "yilmaz" not in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    (event,) = AuditEvent.objects.filter(action="referral.attachment_downloaded")
    assert event.actor_id == user.pk
    assert event.family_id == str(family.pk)
    assert event.target_id == str(sent.pk)
    assert event.details == {"attachment": str(attachment.pk)}


@pytest.mark.parametrize("who", ["dirk", "dora", "clara"])
def test_outsider_gets_404(network, family, sent, who):
    user = getattr(network, who)
    attachment = attachment_named(sent, "arbeitsvertrag-yilmaz.pdf")

    response = verified_client(user).get(download_url(sent, attachment))

    assert response.status_code == 404
    assert PDF not in response.content
    assert not AuditEvent.objects.filter(action="referral.attachment_downloaded").exists()
    assert AuditEvent.objects.filter(
        action="referral.access_denied", actor_id=user.pk, family_id=str(family.pk)
    ).exists()


@pytest.mark.parametrize("who", ["anna", "ben"])
def test_attachment_of_another_referral_gets_404(network, family, sent, who):
    other = send_with(network, family, Upload(name="anderes.pdf", content=PDF))
    foreign = other.attachments.get()

    response = verified_client(getattr(network, who)).get(download_url(sent, foreign))

    assert response.status_code == 404
    assert not AuditEvent.objects.filter(action="referral.attachment_downloaded").exists()
    # The same attachment through its own referral is there.
    assert verified_client(getattr(network, who)).get(download_url(other, foreign)).status_code == (
        200
    )


def test_unknown_attachment_id_gets_404(network, sent, anna_client):
    url = reverse("referral_attachment", args=[sent.pk, "00000000-0000-4000-8000-000000000000"])

    assert anna_client.get(url).status_code == 404


def test_receiver_loses_the_download_with_the_referral(network, family, sent):
    attachment = attachment_named(sent, "arbeitsvertrag-yilmaz.pdf")
    ben = verified_client(network.ben)
    assert ben.get(download_url(sent, attachment)).status_code == 200

    referral_steps.withdraw_referral(sent, by=network.anna)

    assert ben.get(download_url(sent, attachment)).status_code == 404
