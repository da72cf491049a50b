"""Real Daphne and real Chromium: a server process on a free port with its own database,
and Debian's Chromium driven by Playwright (its own browser download cannot work here)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


PRODUCTION_LIMITS = [
    "--websocket-max-message-size=65536",
    "--websocket-max-frame-size=65536",
    "--ping-interval=20",
    "--ping-timeout=30",
    "--websocket-stall-timeout=10",
    "--websocket-max-backlog=1048576",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, env: dict[str, str], url: str, relay_port: int = 0) -> None:
        self.env = env
        self.url = url
        # A second origin the server trusts: the port of the messaging tests' relay.
        self.relay_port = relay_port
        self.demo_output = ""  # what load_demo printed: the logins, Nora's enrolment link

    def manage(self, *args: str) -> str:
        result = subprocess.run(  # noqa: S603 (our own manage.py)
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Daphne serving the demo network from a fresh SQLite database of its own."""
    with serving(tmp_path_factory.mktemp("daphne")) as server:
        yield server


@contextlib.contextmanager
def serving(data: Path, **settings: str) -> Iterator[Server]:
    """A server as `server` is, in DATA, with SETTINGS (environment variables) added: for
    tests that need a setting the others must not have (a small rate limit)."""
    port, relay_port = free_port(), free_port()
    env = {
        **os.environ,
        "DIENSTWEG_DEBUG": "true",
        "DIENSTWEG_DATA_DIR": str(data),
        "DATABASE_URL": f"sqlite:///{data / 'browser.sqlite3'}",
        # Links in e-mails (and load_demo's enrolment link) point at this server.
        "DIENSTWEG_BASE_URL": f"http://127.0.0.1:{port}",
        # The socket accepts these origins exactly (port included): the relay's too.
        "DIENSTWEG_CSRF_TRUSTED_ORIGINS": f"http://127.0.0.1:{relay_port}",
        **settings,
    }
    env.pop("REDIS_URL", None)
    server = Server(env, f"http://127.0.0.1:{port}", relay_port)
    server.manage("migrate", "--no-input", "-v", "0")
    server.demo_output = server.manage("load_demo")
    log = (data / "daphne.log").open("w")
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            # The production server: Daphne with the limits of deploy/systemd.
            "config.serve",
            *PRODUCTION_LIMITS,
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "config.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60  # a busy machine starts Daphne slowly
        while True:
            try:
                with urllib.request.urlopen(f"{server.url}/healthz", timeout=1):  # noqa: S310
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError((data / "daphne.log").read_text()) from None
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


# Module scope: Playwright's sync API keeps an event loop running while it is open, which
# would break the asyncio tests collected after this package.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (see .ci/run)")
    from playwright.sync_api import expect, sync_playwright

    # Playwright's expect gives up after 5 s: a busy machine may need longer for a page (a
    # passing run on a quiet one needs a fraction of a second). Actions already wait 30 s.
    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
