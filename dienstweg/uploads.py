"""Files staff upload (referral and message attachments) and the download that serves them
back: the upload as the apps pass it on, its checks, the form field for several files, and
the HTTP response for a decrypted attachment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpResponse
from django.utils.translation import gettext as _

from dienstweg.actions import ActionError, evidence_type

ATTACHMENT_EXTENSIONS = {
    "application/pdf": {"pdf"},
    "image/jpeg": {"jpg", "jpeg"},
    "image/png": {"png"},
}
# The extension of a download's file name, by its content type.
EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}

View = TypeVar("View", bound=Callable[..., Any])


def accepts_uploads(view: View) -> View:
    """Mark a view that takes files: only its multipart POSTs of a verified session may
    carry up to settings.UPLOAD_REQUEST_MAX_BYTES; the server (config/request_bodies.py)
    refuses every other request over settings.FORM_REQUEST_MAX_BYTES before reading it."""
    view.accepts_uploads = True  # type: ignore[attr-defined]
    return view


@dataclass(frozen=True)
class Upload:
    name: str
    content: bytes


def check_upload(upload: Upload) -> str:
    """The attachment's content type, or ActionError: PDF, JPEG or PNG by its first bytes,
    a plain file name whose extension matches the content, within the size limit."""
    name = upload.name
    if (
        not name
        or len(name) > 120
        or any(ch in name for ch in "/\\\x00")
        or ".." in name
        or any(ord(ch) < 32 for ch in name)
    ):
        raise ActionError(_("Ungültiger Dateiname."))
    if len(upload.content) > settings.ATTACHMENT_MAX_BYTES:
        raise ActionError(_("Die Datei „%(name)s“ ist zu groß.") % {"name": name})
    content_type = evidence_type(upload.content)
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if content_type is None or extension not in ATTACHMENT_EXTENSIONS[content_type]:
        raise ActionError(
            _("„%(name)s“: nur PDF, JPEG oder PNG mit passender Dateiendung.") % {"name": name}
        )
    return content_type


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input (Django's documented pattern)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        return [super().clean(data, initial)] if data else []


def attachment_response(content: bytes, content_type: str, stem: str) -> HttpResponse:
    """A download that the browser saves rather than renders: our own plain file name (the
    uploaded name may carry personal data or tricks), no type sniffing."""
    response = HttpResponse(content, content_type=content_type)
    extension = EXTENSIONS.get(content_type, "bin")
    response["Content-Disposition"] = f'attachment; filename="{stem}.{extension}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
