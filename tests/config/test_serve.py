"""A client that stops reading is dropped before the server buffers much for it
(config/serve.py). The real server runs in a subprocess with the bare app of
slow_client_app.py; the slow client is a raw socket that shakes hands and never reads."""

from __future__ import annotations

import base64
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.config.slow_client_app import FRAME_SIZE, MODES

ROOT = Path(__file__).resolve().parents[2]
STALL_SECONDS = 2
MAX_BACKLOG = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, text: str, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"{text!r} not logged within {timeout} s:\n{self.log_text()}")
            time.sleep(0.05)

    def peak_rss_kib(self) -> int:
        """The server's peak resident memory so far (VmHWM), so a freed buffer still counts."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc/<pid>/status")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start the real server on a free port; every process started is killed at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*, max_backlog: int = MAX_BACKLOG) -> Served:
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(  # noqa: S603 (our own server module)
                [
                    sys.executable,
                    "-m",
                    "config.serve",
                    "--websocket-max-message-size",
                    "65536",
                    "--websocket-max-frame-size",
                    "65536",
                    "--websocket-stall-timeout",
                    str(STALL_SECONDS),
                    "--websocket-max-backlog",
                    str(max_backlog),
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "tests.config.slow_client_app:application",
                ],
                cwd=ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        served = Served(port=port, process=process, log=log)
        served.wait_for_log("Listening on TCP address", timeout=10)
        return served

    try:
        yield start
    finally:
        for process in started:
            process.kill()
            process.wait(timeout=5)


def stalled_socket(port: int) -> socket.socket:
    """A WebSocket on /ws/ whose client will never read after the handshake."""
    sock = socket.socket()
    # Before connect, so the client advertises a tiny window from the start.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(1024)  # nothing but the handshake comes before our first frame
        assert chunk, "server closed during the handshake"
        response += chunk
    assert response.startswith(b"HTTP/1.1 101 "), response
    return sock


def send_text(sock: socket.socket, text: str) -> None:
    """Send one short text frame, masked as every client frame must be."""
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)


def seconds_until_dropped(sock: socket.socket, *, timeout: float) -> float | None:
    """Wait, without reading, for the server's reset; None if it never came."""
    poller = select.poll()
    # Not POLLIN: data is waiting unread all along. The reset raises HUP/ERR/RDHUP.
    poller.register(sock, select.POLLRDHUP)
    start = time.monotonic()
    while (remaining := start + timeout - time.monotonic()) > 0:
        for _fd, events in poller.poll(int(remaining * 1000) + 1):
            if events & (select.POLLRDHUP | select.POLLHUP | select.POLLERR):
                return time.monotonic() - start
    return None


def test_stalled_client_is_dropped_after_the_stall_timeout(
    serve: Callable[..., Served],
) -> None:
    # A backlog limit out of reach, so that only the clock can act on the 12 MB burst.
    server = serve(max_backlog=256 * 1024 * 1024)
    with stalled_socket(server.port) as sock:
        send_text(sock, "burst")
        dropped_after = seconds_until_dropped(sock, timeout=STALL_SECONDS + 5)

    assert dropped_after is not None, server.log_text()
    print(f"stalled client dropped after {dropped_after:.2f} s")
    assert STALL_SECONDS - 0.5 < dropped_after < STALL_SECONDS + 2
    assert f"has not drained for {STALL_SECONDS} s" in server.log_text()


def test_flood_to_stalled_client_is_cut_at_the_backlog_limit(
    serve: Callable[..., Served],
) -> None:
    server = serve()
    peak_before = server.peak_rss_kib()
    with stalled_socket(server.port) as sock:
        send_text(sock, "flood")
        dropped_after = seconds_until_dropped(sock, timeout=STALL_SECONDS + 5)
        # The app keeps sending after the drop; wait until all 120 MB went through Daphne.
        server.wait_for_log(f"sent {MODES['flood'][0]} frames", timeout=20)
    growth_mib = (server.peak_rss_kib() - peak_before) / 1024

    assert dropped_after is not None, server.log_text()
    print(f"flooded client dropped after {dropped_after:.2f} s, peak RSS +{growth_mib:.1f} MiB")
    assert dropped_after < STALL_SECONDS  # the backlog limit acted, not the clock
    assert "queued while its send buffer was full" in server.log_text()
    # 120 MB were sent; what the server held for the client is about 1 MiB.
    assert growth_mib < 16


def test_reading_client_receives_the_whole_stream(serve: Callable[..., Served]) -> None:
    server = serve()
    received = 0
    started = time.monotonic()
    with connect(f"ws://127.0.0.1:{server.port}/ws/", open_timeout=5, close_timeout=2) as ws:
        ws.send("stream")
        while (message := ws.recv(timeout=10)) != "done":
            received += len(message)
    print(f"reading client received {received} bytes in {time.monotonic() - started:.2f} s")

    assert received == MODES["stream"][0] * FRAME_SIZE
    assert "Dropping WebSocket" not in server.log_text()


def test_limits_must_be_positive() -> None:
    # A zero timeout would drop every socket at its first full buffer; refused at start.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "config.serve",
            "--websocket-stall-timeout",
            "0",
            "tests.config.slow_client_app:application",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "must be positive" in result.stderr


def test_frames_for_an_aborted_socket_are_dropped_not_raised() -> None:
    # Between the abort and Daphne noticing it, the app may still send: nothing is written.
    from config.serve import GuardedWebSocketProtocol

    protocol = GuardedWebSocketProtocol.__new__(GuardedWebSocketProtocol)
    protocol.state = GuardedWebSocketProtocol.STATE_CLOSED
    written: list[bytes] = []
    protocol.sendData = lambda data, *args, **kwargs: written.append(data)  # type: ignore[method-assign]
    protocol.serverSend("late frame")
    assert written == []


def test_server_uses_the_guarded_protocol_and_still_calls_ready() -> None:
    # Daphne has no option for the protocol or request class: the server swaps them in its
    # ready hook, and must still call the caller's own ready_callable after it.
    from daphne.http_protocol import HTTPFactory

    from config.request_bodies import BoundedWebRequest
    from config.serve import GuardedWebSocketProtocol, Server

    called: list[bool] = []
    server = Server(
        application=None, endpoints=["tcp:port=0"], ready_callable=lambda: called.append(True)
    )

    class Factory:
        protocol: type = object

    server.ws_factory = Factory()
    server.http_factory = HTTPFactory(server)
    server._use_guarded_protocol()
    assert server.ws_factory.protocol is GuardedWebSocketProtocol
    assert server.http_factory.buildProtocol(None).requestFactory is BoundedWebRequest
    assert called == [True]
