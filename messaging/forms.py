"""The message form: the page's composer without JavaScript, and for attachments."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from dienstweg.uploads import MultipleFileField, Upload


class MessageForm(forms.Form):
    # No max_length: a browser's maxlength would cut a pasted text short without a word.
    # The page counts against the same MESSAGE_MAX_CHARS (data-max-chars) and refuses to
    # send while over it; post_message refuses a longer text and the form comes back
    # with it.
    body = forms.CharField(
        label=_("Nachricht"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    # Made by the page: a form sent twice (reload, double click) is stored once.
    client_id = forms.UUIDField(widget=forms.HiddenInput)
    # The message this one answers ("Antworten"), quoted above it.
    reply_to = forms.UUIDField(required=False, widget=forms.HiddenInput)
    attachments = MultipleFileField(
        label=_("Anhänge (PDF, JPEG oder PNG)"),
        required=False,
        help_text=_("Höchstens fünf Dateien; sie werden verschlüsselt gespeichert."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["body"].widget.attrs.update(
            {
                "data-max-chars": settings.MESSAGE_MAX_CHARS,
                "data-max-frame": settings.WS_MAX_FRAME_CHARS,
                "aria-describedby": "body-counter composer-error",
            }
        )

    def clean_attachments(self) -> list[Upload]:
        uploads = self.cleaned_data.get("attachments") or []
        return [Upload(name=upload.name or "", content=upload.read()) for upload in uploads]
