"""The production setup, run: Debian's nginx with deploy/nginx/dienstweg.conf (ports, paths
and a throw-away certificate substituted) in front of two config.serve processes started
with the command line of deploy/systemd/dienstweg@.service, without DEBUG, on PostgreSQL and
Redis. Everything goes through nginx over HTTPS, as a browser's requests would."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import http.client
import ipaddress
import json
import os
import re
import shlex
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.db import connection
from websockets.asyncio.client import connect
from websockets.typing import Origin

from dienstweg.models import User
from messaging.actions import open_direct_thread
from messaging.models import Message, MessageAttachment, Thread
from tests.browser.conftest import ROOT, free_port
from tests.config.open_files import OpenFileWatch, children_of
from tests.conftest import PASSWORD, Network, enrol, verified_client
from tests.dienstweg.signin import next_code
from tests.messaging.test_two_daphne import current_database_url

NGINX = "/usr/sbin/nginx"
HOST = "dienstweg.example.org"
UNIT = ROOT / "deploy" / "systemd" / "dienstweg@.service"
SITE = ROOT / "deploy" / "nginx" / "dienstweg.conf"
TIMEOUT = 60.0  # seconds for any one step; generous, as the largest upload is 50 MiB
HSTS = "max-age=31536000; includeSubDomains; preload"

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)"
    ),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL=redis://)"),
    pytest.mark.skipif(
        not os.path.exists(NGINX), reason=f"{NGINX} is missing: apt-get install nginx (.ci/run)"
    ),
]


@dataclass
class Production:
    https_port: int
    http_port: int
    app_ports: list[int]
    app_pids: list[int]
    nginx_pid: int
    prefix: Path
    static_root: Path
    tls: ssl.SSLContext
    logs: list[Path] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"https://{HOST}:{self.https_port}"

    def https(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            "127.0.0.1", self.https_port, context=self.tls, timeout=TIMEOUT
        )

    def tls_socket(self) -> ssl.SSLSocket:
        sock = socket.create_connection(("127.0.0.1", self.https_port), timeout=TIMEOUT)
        return self.tls.wrap_socket(sock, server_hostname=HOST)

    def nginx_pids(self) -> list[int]:
        return [self.nginx_pid, *children_of(self.nginx_pid)]

    def log_text(self) -> str:
        return "\n".join(
            f"== {log}\n{log.read_text(errors='replace')}" for log in self.logs if log.exists()
        )


class Browser:
    """Cookies and the CSRF token of one person's browser, over HTTPS through nginx."""

    def __init__(self, site: Production) -> None:
        self.site = site
        self.cookies: dict[str, str] = {}
        self.set_cookie_lines: list[str] = []

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[http.client.HTTPResponse, bytes]:
        connection = self.site.https()
        all_headers = {"Host": f"{HOST}:{self.site.https_port}", **(headers or {})}
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if method == "POST":
            all_headers.setdefault("Origin", self.site.origin)
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        content = response.read()
        connection.close()
        for line in response.headers.get_all("Set-Cookie") or []:
            self.set_cookie_lines.append(line)
            name, _sep, rest = line.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return response, content

    def csrf_token(self, path: str) -> str:
        response, content = self.request("GET", path)
        assert response.status == 200, (path, response.status)
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', content)
        assert token
        return token.group(1).decode()

    def post_form(self, path: str, fields: dict[str, str]) -> http.client.HTTPResponse:
        fields = {"csrfmiddlewaretoken": self.csrf_token(path), **fields}
        body = "&".join(f"{k}={v}" for k, v in fields.items()).encode()
        response, _content = self.request(
            "POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        return response


def certificate(directory: Path) -> tuple[Path, Path]:
    """A throw-away self-signed certificate for HOST and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(HOST), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def replace_once(text: str, old: str, new: str) -> str:
    # Exactly once: a change of the site file that the rendering misses fails loudly here.
    assert text.count(old) == 1, f"{old!r} in {SITE.name}: {text.count(old)} times"
    return text.replace(old, new)


def render_site(
    https_port: int, http_port: int, app_ports: list[int], static: Path, cert: Path, key: Path
) -> str:
    text = SITE.read_text()
    text = replace_once(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    text = replace_once(text, "listen 80;", f"listen 127.0.0.1:{http_port};")
    text = replace_once(text, "server 127.0.0.1:8001;", f"server 127.0.0.1:{app_ports[0]};")
    text = replace_once(text, "server 127.0.0.1:8002;", f"server 127.0.0.1:{app_ports[1]};")
    text = replace_once(text, "/etc/ssl/dienstweg/fullchain.pem", str(cert))
    text = replace_once(text, "/etc/ssl/dienstweg/privkey.pem", str(key))
    text = replace_once(text, "alias /srv/dienstweg/staticfiles/;", f"alias {static}/;")
    return text


def main_config(prefix: Path) -> str:
    """What /etc/nginx/nginx.conf is to the site file, in a prefix of the test's own."""
    # Started as root (CI), nginx would run its workers as nobody, who cannot enter tmp_path.
    user = "user root;" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind}_temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 128; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {prefix}/access.log;
{temp}
    include {prefix}/dienstweg.conf;
}}
"""


def serve_command(port: int) -> list[str]:
    """ExecStart of the systemd unit, with this Python and PORT for %i."""
    lines = UNIT.read_text().splitlines()
    exec_start = next(line.split("=", 1)[1] for line in lines if line.startswith("ExecStart="))
    words = shlex.split(exec_start.replace("%i", str(port)))
    assert words[0] == "/srv/dienstweg/.venv/bin/python"
    return [sys.executable, *words[1:]]


def production_env(tmp_path: Path, https_port: int, static: Path) -> dict[str, str]:
    """Production settings: no DEBUG, this process's secrets (so that the test's own rows
    and sessions are the servers'), in the shape production requires."""
    master = settings.VAULT_MASTER_KEYS
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DIENSTWEG_", "DATABASE_URL", "REDIS_URL"))
    }
    origin = f"https://{HOST}:{https_port}"
    return {
        **env,
        "DIENSTWEG_DEBUG": "false",
        "DIENSTWEG_DATA_DIR": str(tmp_path / "data"),
        "DIENSTWEG_AUDIT_ANCHOR_DIR": str(tmp_path / "anchor"),
        "DATABASE_URL": current_database_url(),
        "REDIS_URL": os.environ["REDIS_URL"],
        "DIENSTWEG_SECRET_KEY": settings.SECRET_KEY,
        "DIENSTWEG_BACKUP_CODE_KEY": settings.BACKUP_CODE_KEY,
        "DIENSTWEG_BLIND_INDEX_KEY": settings.VAULT_BLIND_INDEX_KEY.decode(),
        "DIENSTWEG_MASTER_KEYS": ",".join(
            f"{version}:{base64.b64encode(key).decode()}" for version, key in master.items()
        ),
        # The development secret is hashed into the signing key (audit/signing.py): the
        # same key, in production's shape.
        "DIENSTWEG_AUDIT_SIGNING_KEY": base64.b64encode(
            hashlib.sha256(settings.AUDIT_SIGNING_KEY.encode()).digest()
        ).decode(),
        "DIENSTWEG_ALLOWED_HOSTS": HOST,
        "DIENSTWEG_CSRF_TRUSTED_ORIGINS": origin,
        "DIENSTWEG_BASE_URL": origin,
        "DIENSTWEG_TRUSTED_PROXIES": "127.0.0.1",
        "DIENSTWEG_HTTPS": "true",
        "DIENSTWEG_SERVE_STATIC": "false",
        "DIENSTWEG_STATIC_ROOT": str(static),
        # Nothing here listens for mail, and the servers never send any: only the outbox's
        # sender does (dienstweg-notifications), which this test does not start.
        "DIENSTWEG_EMAIL_HOST": "127.0.0.1",
        "DIENSTWEG_EMAIL_PORT": str(free_port()),
    }


def wait_for_app(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the server answers /healthz as it would behind nginx."""
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=TIMEOUT)
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request(
                "GET", "/healthz", headers={"Host": HOST, "X-Forwarded-Proto": "https"}
            )
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        if datetime.datetime.now() > deadline or process.poll() is not None:
            raise RuntimeError(f"port {port} did not start:\n{log.read_text()}")
        time.sleep(0.2)  # starting: poll its port, as the other server tests do


@pytest.fixture
def production(committed: None, tmp_path: Path) -> Iterator[Production]:
    https_port, http_port = free_port(), free_port()
    app_ports = [free_port(), free_port()]
    static = tmp_path / "staticfiles"
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    env = production_env(tmp_path, https_port, static)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    cert, key = certificate(tmp_path)
    (prefix / "dienstweg.conf").write_text(
        render_site(https_port, http_port, app_ports, static, cert, key)
    )
    (prefix / "nginx.conf").write_text(main_config(prefix))
    tls = ssl.create_default_context(cafile=str(cert))
    processes: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for port in app_ports:
            log = tmp_path / f"serve-{port}.log"
            logs.append(log)
            with log.open("wb") as out:
                processes.append(
                    subprocess.Popen(  # noqa: S603 (the unit's own command line)
                        serve_command(port), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
                    )
                )
        for port, process, log in zip(app_ports, processes, logs, strict=True):
            wait_for_app(port, process, log)
        nginx_log = tmp_path / "nginx.out"
        logs += [nginx_log, prefix / "error.log"]
        with nginx_log.open("wb") as out:
            nginx = subprocess.Popen(  # noqa: S603
                [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        processes.append(nginx)
        site = Production(
            https_port,
            http_port,
            app_ports,
            [process.pid for process in processes[:2]],
            nginx.pid,
            prefix,
            static,
            tls,
            logs,
        )
        wait_for_nginx(site, nginx)
        yield site
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=TIMEOUT)


def wait_for_nginx(site: Production, nginx: subprocess.Popen[bytes]) -> None:
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=TIMEOUT)
    while True:
        try:
            response, _content = Browser(site).request("GET", "/healthz")
            if response.status == 200:
                return
        except OSError:
            pass
        if datetime.datetime.now() > deadline or nginx.poll() is not None:
            raise RuntimeError(f"nginx did not start:\n{site.log_text()}")
        time.sleep(0.2)


def log_in(site: Production, user: User) -> Browser:
    """Password, then the authenticator's code, through the real pages over HTTPS."""
    device = enrol(user)
    browser = Browser(site)
    response = browser.post_form("/anmelden/", {"username": user.email, "password": PASSWORD})
    assert response.status == 302, site.log_text()
    assert response.getheader("Location", "").startswith("/zweiter-faktor/")
    response = browser.post_form("/zweiter-faktor/", {"token": next_code(device)})
    assert response.status == 302
    home, _content = browser.request("GET", "/")
    assert home.status == 200
    return browser


def production_passwords(network: Network, settings: Any) -> None:
    # The servers hash with Argon2 (the test process with MD5, for speed).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
    user = network.anna
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])


def multipart(fields: dict[str, str], files: list[tuple[str, bytes]]) -> tuple[str, bytes]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        disposition = f'Content-Disposition: form-data; name="{name}"'
        parts.append(f"--{boundary}\r\n{disposition}\r\n\r\n{value}\r\n".encode())
    for filename, content in files:
        disposition = f'Content-Disposition: form-data; name="attachments"; filename="{filename}"'
        parts.append(
            f"--{boundary}\r\n{disposition}\r\nContent-Type: image/png\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)


def established_on(port: int) -> int:
    """Open TCP connections accepted on PORT (IPv4 loopback), from /proc/net/tcp."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, _remote, state = line.split()[1:4]
        if int(local.split(":")[1], 16) == port and state == "01":
            count += 1
    return count


def socket_through_nginx(site: Production, cookie: str) -> Any:
    return connect(
        f"wss://{HOST}:{site.https_port}/ws/",
        host="127.0.0.1",
        port=site.https_port,
        ssl=site.tls,
        origin=Origin(site.origin),
        additional_headers={"Cookie": cookie},
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
    )


async def next_of(socket: Any, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        while True:
            data = json.loads(await socket.recv())
            if data["type"] == kind:
                return data


async def converse(site: Production, thread: Thread, anna: str, ben: str) -> None:
    """Anna's socket on one server, Ben's on the other (nginx alternates between them)."""
    before = [established_on(port) for port in site.app_ports]
    async with socket_through_nginx(site, anna) as anna_socket:
        after = [established_on(port) for port in site.app_ports]
        annas = next(i for i in (0, 1) if after[i] > before[i])
        others = site.app_ports[1 - annas]
        sockets = []
        try:
            # Round robin sends the next socket to the other server; a request of someone
            # else in between could shift it, so open until one lands there.
            while len(sockets) < 4:
                count = established_on(others)
                sockets.append(await socket_through_nginx(site, ben))
                if established_on(others) > count:
                    break
            else:
                raise AssertionError("no socket reached the other server")
            ben_socket = sockets[-1]
            await ben_socket.send(
                json.dumps({"type": "sync", "thread": str(thread.pk), "after": 0})
            )
            await next_of(ben_socket, "sync.result")
            client_id = str(uuid.uuid4())
            body = "Frau Y. kommt am Dienstag um 10 Uhr."
            await anna_socket.send(
                json.dumps(
                    {"type": "message.send", "thread": str(thread.pk), "client_id": client_id}
                    | {"body": body}
                )
            )
            assert (await next_of(anna_socket, "message.ack"))["client_id"] == client_id
            assert (await next_of(ben_socket, "message.new"))["message"]["body"] == body
        finally:
            for sock in sockets:
                await sock.close()


def upload(
    site: Production, browser: Browser, thread: Thread, files: list[tuple[str, bytes]]
) -> tuple[int, bytes, set[str]]:
    """Post a message with FILES to the thread, slowly enough for the watch to look at the
    open files of nginx and of both servers many times while the body arrives."""
    token = browser.csrf_token(f"/nachrichten/{thread.pk}/")
    content_type, body = multipart(
        {"csrfmiddlewaretoken": token, "client_id": str(uuid.uuid4()), "body": "Die Unterlagen"},
        files,
    )
    cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    head = (
        f"POST /nachrichten/{thread.pk}/senden/ HTTP/1.1\r\nHost: {HOST}:{site.https_port}\r\n"
        f"Cookie: {cookie}\r\nOrigin: {site.origin}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    temp_dirs = [site.prefix / f"{kind}_temp" for kind in ("client_body", "proxy")]
    pids = lambda: [*site.app_pids, *site.nginx_pids()]  # noqa: E731
    watch = OpenFileWatch(pids, allowed=site.prefix.parent, watched=temp_dirs)
    with watch, site.tls_socket() as sock:
        sock.sendall(head)
        step = 1024 * 1024
        for start in range(0, len(body), step):
            sock.sendall(body[start : start + step])
            watch.scanned()
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
        watch.scanned()
    return len(body), response, watch.suspicious


def test_production_setup(production: Production, network: Network, settings: Any) -> None:
    site = production
    production_passwords(network, settings)
    thread = open_direct_thread(network.ben, by=network.anna)

    # A login with the second factor over HTTPS; HSTS and secure cookies.
    anna = log_in(site, network.anna)
    assert any(
        line.startswith(f"{settings.SESSION_COOKIE_NAME}=") for line in anna.set_cookie_lines
    )
    for line in anna.set_cookie_lines:
        assert "; Secure" in line, line
    page, _content = anna.request("GET", "/")
    assert page.headers.get_all("Strict-Transport-Security") == [HSTS]

    # Plain HTTP only redirects to HTTPS.
    plain = http.client.HTTPConnection("127.0.0.1", site.http_port, timeout=TIMEOUT)
    plain.request("GET", "/anmelden/", headers={"Host": HOST})
    redirect = plain.getresponse()
    assert redirect.status == 301
    assert redirect.getheader("Location") == f"https://{HOST}/anmelden/"

    # Static files come from the collected root, served by nginx (the servers have none).
    static_file = next(site.static_root.rglob("*.js"))
    path = "/static/" + static_file.relative_to(site.static_root).as_posix()
    response, content = Browser(site).request("GET", path)
    assert response.status == 200 and content == static_file.read_bytes()
    assert response.headers.get_all("Strict-Transport-Security") == [HSTS]
    direct = http.client.HTTPConnection("127.0.0.1", site.app_ports[0], timeout=TIMEOUT)
    direct.request("GET", path, headers={"Host": HOST, "X-Forwarded-Proto": "https"})
    assert direct.getresponse().status == 404

    # A message crosses from one server to the other through nginx's WebSocket proxy.
    ben_client = verified_client(network.ben)
    ben_cookie = (
        f"{settings.SESSION_COOKIE_NAME}={ben_client.cookies[settings.SESSION_COOKIE_NAME].value}"
    )
    anna_cookie = f"{settings.SESSION_COOKIE_NAME}={anna.cookies[settings.SESSION_COOKIE_NAME]}"
    asyncio.run(converse(site, thread, anna_cookie, ben_cookie))

    # The largest upload: five attachments of the largest size, within the limit, kept in
    # memory by nginx and by the server that takes it.
    largest = b"\x89PNG\r\n\x1a\n" + b"\0" * (settings.ATTACHMENT_MAX_BYTES - 8)
    files = [(f"seite-{n}.png", largest) for n in range(1, 6)]
    size, response, suspicious = upload(site, anna, thread, files)
    assert size <= settings.UPLOAD_REQUEST_MAX_BYTES
    assert response.startswith(b"HTTP/1.1 302 "), response[:300]
    assert suspicious == set(), "a request body in a file"
    assert not [p for p in (site.prefix / "client_body_temp").rglob("*") if p.is_file()]
    message = Message.objects.filter(thread=thread).latest("seq")
    assert MessageAttachment.objects.filter(message=message).count() == 5

    # One byte more is refused by nginx from the request's head alone.
    with site.tls_socket() as sock:
        sock.sendall(
            f"POST /nachrichten/{thread.pk}/senden/ HTTP/1.1\r\nHost: {HOST}\r\n"
            f"Cookie: {ben_cookie}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
            f"Content-Length: {settings.UPLOAD_REQUEST_MAX_BYTES + 1}\r\n\r\n".encode()
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 413 ")
    # And so is a form over the lower limit of every other URL.
    with site.tls_socket() as sock:
        sock.sendall(
            f"POST /anmelden/ HTTP/1.1\r\nHost: {HOST}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {settings.FORM_REQUEST_MAX_BYTES + 1}\r\n\r\n".encode()
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 413 ")
