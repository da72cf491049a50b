"""The message form: the page's composer without JavaScript, and for attachments."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from dienstweg.uploads import MultipleFileField, Upload


class MessageForm(forms.Form):
    body = forms.CharField(
        label=_("Nachricht"),
        required=False,
        max_length=settings.MESSAGE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    # Made by the page: a form sent twice (reload, double click) is stored once.
    client_id = forms.UUIDField(widget=forms.HiddenInput)
    attachments = MultipleFileField(
        label=_("Anhänge (PDF, JPEG oder PNG)"),
        required=False,
        help_text=_("Höchstens fünf Dateien; sie werden verschlüsselt gespeichert."),
    )

    def clean_attachments(self) -> list[Upload]:
        uploads = self.cleaned_data.get("attachments") or []
        return [Upload(name=upload.name or "", content=upload.read()) for upload in uploads]
