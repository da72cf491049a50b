"""Request bodies stay in the server's memory and within their limit (config/request_bodies.py).
The real server runs in a subprocess on an SQLite database of its own; the clients are raw
sockets, so the test decides exactly which bytes the server has when it looks."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from tests.browser.conftest import ROOT, free_port
from tests.config.open_files import OpenFileWatch
from tests.messaging.test_two_daphne import wait_healthy

SERVE = [sys.executable, "-m", "config.serve"]
TIMEOUT = 30.0  # seconds for any one step; a passing run needs a fraction of it
ATTACHMENT = b"\x89PNG\r\n\x1a\n" + b"Befund der Schuldnerberatung " * 5_200  # ~150 kB


@dataclass
class Site:
    port: int
    process: subprocess.Popen[bytes]
    data: Path
    thread: str
    session: str

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        return sock

    def get(self, path: str, cookie: str) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        connection.request("GET", path, headers={"Cookie": cookie})
        return connection.getresponse()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """config.serve with the production limits, on a database with a direct thread."""
    data = tmp_path_factory.mktemp("bodies")
    port = free_port()
    env = {
        **os.environ,
        "DIENSTWEG_DEBUG": "true",
        "DIENSTWEG_DATA_DIR": str(data),
        "DATABASE_URL": f"sqlite:///{data / 'site.sqlite3'}",
        "DIENSTWEG_BASE_URL": f"http://127.0.0.1:{port}",
    }
    env.pop("REDIS_URL", None)
    run = {"cwd": ROOT, "env": env, "check": True, "capture_output": True}
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], **run)
    made = subprocess.run([sys.executable, "-m", "tests.config.upload_site"], **run)
    ids = json.loads(made.stdout.decode().strip().splitlines()[-1])
    log = data / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 (our own server)
            [*SERVE, "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, log)
        yield Site(port, process, data, ids["thread"], ids["session"])
    finally:
        process.terminate()
        process.wait(timeout=TIMEOUT)


def response_of(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes or finishes one response."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
        head, _sep, body = received.partition(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        if _sep and length and len(body) >= int(length.group(1)):
            break
    return received


def csrf_of(site: Site, cookie: str) -> tuple[str, str]:
    """The CSRF cookie and the form's token, from the thread's page."""
    response = site.get(f"/nachrichten/{site.thread}/", cookie)
    assert response.status == 200
    csrf_cookie = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie") or "")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', response.read())
    assert csrf_cookie and token
    return csrf_cookie.group(1), token.group(1).decode()


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[str, bytes]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        disposition = f'Content-Disposition: form-data; name="{name}"'
        parts.append(f"--{boundary}\r\n{disposition}\r\n\r\n{value}\r\n".encode())
    for name, (filename, content) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: image/png\r\n\r\n'.encode()
            + content
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)


def test_a_slow_upload_stays_in_memory_and_arrives(site: Site) -> None:
    session = f"{settings.SESSION_COOKIE_NAME}={site.session}"
    csrf_cookie, token = csrf_of(site, session)
    cookie = f"{session}; csrftoken={csrf_cookie}"
    content_type, body = multipart(
        {"csrfmiddlewaretoken": token, "client_id": str(uuid.uuid4()), "body": "Anbei der Befund"},
        {"attachments": ("befund.png", ATTACHMENT)},
    )
    assert len(body) > 150_000  # over Twisted's 100,000 bytes, which it would spool to disk
    head = (
        f"POST /nachrichten/{site.thread}/senden/ HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{site.port}\r\nCookie: {cookie}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with OpenFileWatch([site.process.pid], allowed=site.data) as watch, site.connect() as sock:
        sock.sendall(head)
        watch.scanned()
        # Slowly: the server holds part of the body through many looks at its files.
        for start in range(0, len(body), 4096):
            sock.sendall(body[start : start + 4096])
            watch.scanned()
        response = response_of(sock)
        watch.scanned()
    assert watch.scans > len(body) // 4096
    assert watch.suspicious == set(), "request body in a file"
    assert response.startswith(b"HTTP/1.1 302"), response[:200]
    page = site.get(f"/nachrichten/{site.thread}/", session)
    assert b"befund.png" in page.read()


def refused_after_head(site: Site, head: str) -> bytes:
    """Send only the request's head; the answer must come without any of the body."""
    with site.connect() as sock:
        sock.sendall(head.encode())
        response = response_of(sock)
        assert sock.recv(1) == b""  # closed: the body is not awaited
    return response


def test_an_anonymous_120_mib_post_to_the_login_is_refused_before_its_body(site: Site) -> None:
    response = refused_after_head(
        site,
        f"POST /anmelden/ HTTP/1.1\r\nHost: 127.0.0.1:{site.port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {120 * 1024 * 1024}\r\n\r\n",
    )
    assert response.startswith(b"HTTP/1.1 413 ")


def test_an_upload_sized_post_without_a_session_is_refused(site: Site) -> None:
    # The upload URL and multipart, but no session: the low limit for anonymous requests.
    response = refused_after_head(
        site,
        f"POST /nachrichten/{site.thread}/senden/ HTTP/1.1\r\nHost: 127.0.0.1:{site.port}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\nExpect: 100-continue\r\n"
        f"Content-Length: {settings.FORM_REQUEST_MAX_BYTES + 1}\r\n\r\n",
    )
    assert response.startswith(b"HTTP/1.1 413 "), response[:100]  # and no "100 Continue"


def test_an_upload_with_a_forged_session_is_refused_before_its_body(site: Site) -> None:
    # The cookie's name is not enough: the server asks the database before reading on.
    cookie = f"{settings.SESSION_COOKIE_NAME}={'x' * 32}"
    response = refused_after_head(
        site,
        f"POST /nachrichten/{site.thread}/senden/ HTTP/1.1\r\nHost: 127.0.0.1:{site.port}\r\n"
        f"Cookie: {cookie}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
        "Expect: 100-continue\r\n"
        f"Content-Length: {settings.FORM_REQUEST_MAX_BYTES + 1}\r\n\r\n",
    )
    assert response.startswith(b"HTTP/1.1 413 "), response[:100]


def test_a_verified_session_is_told_to_go_on_with_its_upload(site: Site) -> None:
    cookie = f"{settings.SESSION_COOKIE_NAME}={site.session}"
    with site.connect() as sock:
        sock.sendall(
            f"POST /nachrichten/{site.thread}/senden/ HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{site.port}\r\nCookie: {cookie}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\nExpect: 100-continue\r\n"
            f"Content-Length: {settings.FORM_REQUEST_MAX_BYTES + 1}\r\n\r\n".encode()
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n")


def test_an_upload_over_the_maximum_is_refused_with_a_session(site: Site) -> None:
    cookie = f"{settings.SESSION_COOKIE_NAME}={site.session}"
    response = refused_after_head(
        site,
        f"POST /nachrichten/{site.thread}/senden/ HTTP/1.1\r\nHost: 127.0.0.1:{site.port}\r\n"
        f"Cookie: {cookie}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {settings.UPLOAD_REQUEST_MAX_BYTES + 1}\r\n\r\n",
    )
    assert response.startswith(b"HTTP/1.1 413 ")


def test_a_chunked_body_is_refused_once_it_passes_the_limit(site: Site) -> None:
    chunk = b"a" * 32 * 1024
    with site.connect() as sock:
        sock.sendall(
            f"POST /anmelden/ HTTP/1.1\r\nHost: 127.0.0.1:{site.port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        sent = 0
        while sent <= settings.FORM_REQUEST_MAX_BYTES:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        response = response_of(sock)
    assert response.startswith(b"HTTP/1.1 413 ")


def test_a_client_that_sends_on_regardless_still_reads_the_413(site: Site) -> None:
    # Like a client that does not wait for "100 Continue": the head and 1 MiB of body at
    # once, all of it in flight when the server answers.
    body = b"a" * 1024 * 1024
    with site.connect() as sock:
        sock.sendall(
            f"POST /anmelden/ HTTP/1.1\r\nHost: 127.0.0.1:{site.port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        assert response_of(sock).startswith(b"HTTP/1.1 413 ")
