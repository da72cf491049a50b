"""Request bodies in memory, within a limit known before the first byte of the body.

Twisted's request object (which Daphne's extends) writes every body of 100,000 bytes or more,
and every body without a Content-Length, to an anonymous temporary file: a message's
attachment would lie in plaintext on disk while it arrives. ``BoundedWebRequest`` keeps
every body in memory instead, and bounds it from the headers alone:

- ``settings.UPLOAD_REQUEST_MAX_BYTES`` (five attachments of the largest size plus the form)
  for a multipart POST to a view marked ``accepts_uploads`` of a verified session;
- ``settings.FORM_REQUEST_MAX_BYTES`` for everything else: logins, forms, anything
  anonymous, any URL that takes no file.

A body whose Content-Length is over its limit is answered with 413 as soon as the headers
are in, before any of it is read; a body without a length (chunked) the moment it passes
its limit. Either way the connection is closed.

Whether the session is one verified by the second factor is asked of the database on a
thread of the reactor's pool, only for a body larger than a form; the connection is not
read meanwhile. A forged or expired cookie gets the form's limit and a 413.
"""

from __future__ import annotations

import asyncio
import logging
import time
from importlib import import_module
from io import BytesIO
from typing import Any

from daphne.http_protocol import WebRequest
from django.conf import settings
from django.db import close_old_connections
from django.urls import Resolver404, resolve
from twisted.internet import threads
from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

LINGER_SECONDS = 5.0
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


def may_upload(method: bytes, path: bytes, content_type: bytes) -> bool:
    """Whether the request is a multipart POST to a view that takes files."""
    return (
        method.upper() == b"POST"
        and content_type.split(b";", 1)[0].strip().lower() == b"multipart/form-data"
        and accepts_uploads_at(path)
    )


def session_may_upload(session_key: str) -> bool:
    """Whether SESSION_KEY belongs to a live session verified by the second factor. Runs
    on a thread of the reactor's pool: it reads the database."""
    from django_otp import DEVICE_ID_SESSION_KEY

    from dienstweg.sessions import SEEN, STARTED, lifetime_over

    engine = import_module(settings.SESSION_ENGINE)
    try:
        data = engine.SessionStore(session_key).load()
    finally:
        close_old_connections()
    if not data.get("_auth_user_id") or not data.get(DEVICE_ID_SESSION_KEY):
        return False
    started, seen = data.get(STARTED), data.get(SEEN)
    return (
        started is not None
        and seen is not None
        and not lifetime_over(started=started, seen=seen, now=time.time())
    )


class BoundedWebRequest(WebRequest):
    """Daphne's request, with its body in memory and within its limit."""

    limit = 0
    refused = False
    # While a session is looked up: the body's declared length, a "100 Continue" owed, and
    # the end of the body if it came before the answer.
    checking_session = False
    declared_length: int | None = None
    continue_owed = False
    received: tuple[bytes, bytes, bytes] | None = None

    def gotLength(self, length: int | None) -> None:
        # Called by the channel once every header is in, before it reads any of the body
        # (and before it answers "Expect: 100-continue").
        self.content = BytesIO()
        self.declared_length = length
        self.limit = int(settings.FORM_REQUEST_MAX_BYTES)
        channel: Any = self.channel
        content_type = self.requestHeaders.getRawHeaders(b"content-type", [b""])[0]
        self.parseCookies()
        session_key = self.received_cookies.get(settings.SESSION_COOKIE_NAME.encode())
        # HTTP/1.1's channel holds the request line until the body is in; any other channel
        # (HTTP/2, which Daphne speaks only over its own TLS, not used here) gets the low limit.
        method, path = getattr(channel, "_command", b""), getattr(channel, "_path", b"")
        if session_key is None or not may_upload(method, path, content_type):
            if length is not None and length > self.limit:
                self.refuse()
            return  # a body without a length is measured as it arrives
        if length is not None and length <= self.limit:
            return  # as small as a form: no need to ask
        if length is not None and length > settings.UPLOAD_REQUEST_MAX_BYTES:
            self.refuse()
            return
        # Larger than a form, within the upload limit: only for a verified session. Stop
        # reading until the database says so (what the kernel handed over already is read,
        # within the upload limit), and owe the client its "100 Continue" until then.
        self.checking_session = True
        self.limit = int(settings.UPLOAD_REQUEST_MAX_BYTES)
        if self.requestHeaders.getRawHeaders(b"expect"):
            self.continue_owed = True
            self.requestHeaders.removeHeader(b"expect")
        channel.transport.pauseProducing()
        checked = threads.deferToThread(session_may_upload, session_key.decode("latin-1"))
        checked.addCallback(self.session_checked)
        checked.addErrback(self.session_unknown)

    def session_checked(self, verified: bool) -> None:
        self.checking_session = False
        if self.refused or self.channel is None:
            return  # the client has gone meanwhile
        if not verified:
            self.limit = int(settings.FORM_REQUEST_MAX_BYTES)
            if (self.declared_length or 0) > self.limit or self.content.tell() > self.limit:
                self.refuse()
                return
        channel: Any = self.channel
        if self.continue_owed:
            channel._send100Continue()
        channel.transport.resumeProducing()
        if self.received is not None:
            super().requestReceived(*self.received)

    def session_unknown(self, failure: Failure) -> None:
        logger.error("Session look-up for an upload failed: %s", failure.getErrorMessage())
        self.session_checked(False)

    def handleContentChunk(self, data: bytes) -> None:
        if self.refused:
            return
        if self.content.tell() + len(data) > self.limit:
            self.refuse()
            return
        self.content.write(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        # A chunked body may still end while the refused connection closes: never run it.
        if self.refused:
            return
        if self.checking_session:
            self.received = (command, path, version)
            return
        super().requestReceived(command, path, version)

    def refuse(self) -> None:
        """Answer 413 and close, keeping nothing more of this connection."""
        self.refused = True
        self.content = BytesIO()
        # The channel would answer "100 Continue" right after gotLength: not any more.
        self.requestHeaders.removeHeader(b"expect")
        channel: Any = self.channel
        channel.dataReceived = lambda data: None
        transport = channel.transport
        transport.write(REFUSAL % (len(REFUSAL_TEXT), REFUSAL_TEXT))
        # Close our side only, and read on (dropping it all) for a while: closing outright
        # while the client still sends makes the kernel answer with a reset, which can
        # destroy the 413 before the client has read it (nginx's lingering close).
        transport.loseWriteConnection()
        transport.resumeProducing()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.abortConnection)
