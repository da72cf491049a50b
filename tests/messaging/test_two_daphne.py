"""Two Daphne processes on one PostgreSQL and one Redis, as production runs them: a
message Anna sends through the first reaches Ben, connected to the second, only through
the Redis channel layer, and his read marker travels back the same way."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from messaging.models import Thread
from tests.browser.conftest import ROOT, free_port
from tests.conftest import Network, verified_client

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)"
    ),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL=redis://)"),
]

TIMEOUT = 60.0  # seconds for any one step; a passing run needs a fraction of it


def current_database_url() -> str:
    """The database this test runs on (pytest's test database, not DATABASE_URL's)."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{auth + '@' if auth else ''}{host}/{quote(db['NAME'], safe='')}"


def shared_data_dir(path: Path) -> Path:
    """A data directory of the servers' own whose generated development secrets are this
    process's: otherwise the servers could not read its sessions or its encrypted rows."""
    secrets = Path(settings.DATA_DIR) / "dev-secrets"
    if secrets.is_dir():
        shutil.copytree(secrets, path / "dev-secrets")
    return path


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):  # noqa: S310
                return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{url} did not start:\n{log.read_text()}") from None
            time.sleep(0.2)


@pytest.fixture
def daphnes(committed: None, tmp_path: Path) -> Iterator[list[str]]:
    """Two Daphne processes on the test database and Redis; their URLs. They see only
    committed rows, hence `committed`, which also outlives them (torn down after)."""
    env = {
        **os.environ,
        "DIENSTWEG_DEBUG": "true",
        "DIENSTWEG_DATA_DIR": str(shared_data_dir(tmp_path)),
        "DATABASE_URL": current_database_url(),
        "REDIS_URL": os.environ["REDIS_URL"],
        "DIENSTWEG_MAX_SOCKETS_PER_USER": "2",
    }
    command = [sys.executable, "-m", "config.serve", "-b", "127.0.0.1"]
    processes: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for n in (1, 2):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            log = tmp_path / f"daphne-{n}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(  # noqa: S603 (our own ASGI application)
                    [*command, "-p", str(port), "config.asgi:application"],
                    cwd=ROOT,
                    # Each process is its own site: sockets come from its exact origin.
                    env={**env, "DIENSTWEG_BASE_URL": url},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            processes.append((process, url, log))
        for process, url, log in processes:
            wait_healthy(url, process, log)
        yield [url for _process, url, _log in processes]
    finally:
        for process, _url, _log in processes:
            process.terminate()
        for process, _url, _log in processes:
            try:
                process.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=TIMEOUT)


def socket_to(url: str, client: Client) -> Any:
    """Open /ws/ on the server at URL with the client's session, from the server's origin."""
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return connect(
        url.replace("http://", "ws://") + "/ws/",
        origin=Origin(url),
        additional_headers={"Cookie": cookie},
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
    )


async def send(socket: ClientConnection, **frame: Any) -> None:
    await socket.send(json.dumps(frame))


async def next_of(socket: ClientConnection, kind: str) -> dict[str, Any]:
    """The next frame of type KIND, skipping others (typing, read markers)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            data = json.loads(await socket.recv())
            if data["type"] == kind:
                return data


async def converse(first: str, second: str, thread: str, anna: Client, ben: Client) -> None:
    async with socket_to(first, anna) as anna_socket, socket_to(second, ben) as ben_socket:
        # Server 2 reads the thread from the shared database: nothing yet.
        await send(ben_socket, type="sync", thread=thread, after=0)
        assert (await next_of(ben_socket, "sync.result"))["messages"] == []

        client_id = str(uuid.uuid4())
        body = "Frau Y. kommt am Dienstag um 10 Uhr."
        await send(anna_socket, type="message.send", thread=thread, client_id=client_id, body=body)
        ack = await next_of(anna_socket, "message.ack")
        assert ack["client_id"] == client_id
        new = (await next_of(ben_socket, "message.new"))["message"]
        assert (new["id"], new["seq"], new["body"]) == (ack["message"]["id"], 1, body)
        assert new["author_name"] == "Anna Albers"

        await send(ben_socket, type="read", thread=thread, seq=new["seq"])
        read = await next_of(anna_socket, "read.updated")
        assert (read["thread"], read["name"], read["seq"]) == (thread, "Ben Becker", 1)


def test_a_message_crosses_from_one_daphne_to_the_other(
    daphnes: list[str], network: Network, thread: Thread
) -> None:
    first, second = daphnes
    anna, ben = verified_client(network.anna), verified_client(network.ben)
    asyncio.run(converse(first, second, str(thread.pk), anna, ben))


async def overflow(first: str, second: str, anna: Client) -> None:
    async with socket_to(first, anna) as oldest, socket_to(first, anna) as middle:
        await send(middle, type="typing", thread="x")  # answered: open and registered
        await next_of(middle, "error")
        async with socket_to(second, anna) as newest:
            # The other process closes the oldest (the cache and the layer are shared).
            async with asyncio.timeout(TIMEOUT):
                with pytest.raises(ConnectionClosed) as closed:
                    await oldest.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4409
            for socket in (middle, newest):
                await send(socket, type="typing", thread="x")
                assert (await next_of(socket, "error"))["code"] == "unknown_thread"


def test_a_socket_beyond_the_limit_closes_the_oldest_in_another_daphne(
    daphnes: list[str], network: Network
) -> None:
    first, second = daphnes
    asyncio.run(overflow(first, second, verified_client(network.anna)))
