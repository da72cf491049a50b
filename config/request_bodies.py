"""Request bodies in memory, within a limit known before the first byte of the body.

Twisted's request object (which Daphne's extends) writes every body of 100,000 bytes or more,
and every body without a Content-Length, to an anonymous temporary file: a message's
attachment would lie in plaintext on disk while it arrives. ``BoundedWebRequest`` keeps
every body in memory instead, and bounds it from the headers alone:

- ``settings.UPLOAD_REQUEST_MAX_BYTES`` (five attachments of the largest size plus the form)
  for a multipart POST to a view marked ``accepts_uploads`` that carries a session cookie;
- ``settings.FORM_REQUEST_MAX_BYTES`` for everything else: logins, forms, anything
  anonymous, any URL that takes no file.

A body whose Content-Length is over its limit is answered with 413 as soon as the headers
are in, before any of it is read; a body without a length (chunked) the moment it passes
its limit. Either way the connection is closed.

The session cookie is only looked at, not looked up (that would need the database inside
the reactor): a forged cookie earns the upload limit on the few upload URLs only, and Django
answers such a request without keeping anything of it.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from daphne.http_protocol import WebRequest
from django.conf import settings
from django.urls import Resolver404, resolve

REFUSAL = (
    b"HTTP/1.1 413 Content Too Large\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\n"
    b"Connection: close\r\n"
    b"\r\n"
    b"%s"
)
REFUSAL_TEXT = "Die Anfrage ist zu groß. / The request is too large.\n".encode()


def accepts_uploads_at(path: bytes) -> bool:
    """Whether the view at PATH is marked as one that takes files (dienstweg.uploads)."""
    try:
        match = resolve(path.split(b"?", 1)[0].decode("ascii"))
    except (Resolver404, UnicodeDecodeError):
        return False
    return bool(getattr(match.func, "accepts_uploads", False))


def body_limit(method: bytes, path: bytes, content_type: bytes, cookies: dict[bytes, bytes]) -> int:
    """The largest body this request may carry, decided from its head alone."""
    if (
        method.upper() == b"POST"
        and content_type.split(b";", 1)[0].strip().lower() == b"multipart/form-data"
        and settings.SESSION_COOKIE_NAME.encode() in cookies
        and accepts_uploads_at(path)
    ):
        return int(settings.UPLOAD_REQUEST_MAX_BYTES)
    return int(settings.FORM_REQUEST_MAX_BYTES)


class BoundedWebRequest(WebRequest):
    """Daphne's request, with its body in memory and within its limit."""

    limit = 0
    refused = False

    def gotLength(self, length: int | None) -> None:
        # Called by the channel once every header is in, before it reads any of the body
        # (and before it answers "Expect: 100-continue").
        self.content = BytesIO()
        channel: Any = self.channel
        content_type = self.requestHeaders.getRawHeaders(b"content-type", [b""])[0]
        self.parseCookies()
        # HTTP/1.1's channel holds the request line until the body is in; any other channel
        # (HTTP/2, which Daphne speaks only over its own TLS, not used here) gets the low limit.
        method, path = getattr(channel, "_command", b""), getattr(channel, "_path", b"")
        self.limit = body_limit(method, path, content_type, self.received_cookies)
        if length is not None and length > self.limit:
            self.refuse()

    def handleContentChunk(self, data: bytes) -> None:
        if self.refused:
            return
        if self.content.tell() + len(data) > self.limit:
            self.refuse()
            return
        self.content.write(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        # A chunked body may still end while the refused connection closes: never run it.
        if not self.refused:
            super().requestReceived(command, path, version)

    def refuse(self) -> None:
        """Answer 413 and close, reading nothing more of this connection."""
        self.refused = True
        self.content = BytesIO()
        # The channel would answer "100 Continue" right after gotLength: not any more.
        self.requestHeaders.removeHeader(b"expect")
        channel: Any = self.channel
        channel.dataReceived = lambda data: None
        channel.transport.write(REFUSAL % (len(REFUSAL_TEXT), REFUSAL_TEXT))
        channel.loseConnection()
