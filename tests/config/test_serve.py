"""A client that stops reading is dropped before the server buffers much for it
(config/serve.py). The real server runs in a subprocess with the bare app of
slow_client_app.py; the slow client is a raw socket that shakes hands and never reads.
The real server's clock cannot be moved: those tests wait on the drop itself, with bounds
wide enough for a busy machine, and the guard's decisions are shown on a hand-run timer."""

from __future__ import annotations

import asyncio
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
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.config.slow_client_app import FRAME_SIZE, MODES

ROOT = Path(__file__).resolve().parents[2]
STALL_SECONDS = 2
MAX_BACKLOG = 1024 * 1024
# Seconds any one step of the real server may take before the test fails; a passing run on
# a quiet machine needs a fraction of one.
BOUND = 60.0


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

    def start(*, stall_seconds: float = STALL_SECONDS, max_backlog: int = MAX_BACKLOG) -> Served:
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
                    str(stall_seconds),
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
        served.wait_for_log("Listening on TCP address", timeout=BOUND)
        return served

    try:
        yield start
    finally:
        for process in started:
            process.kill()
            process.wait(timeout=BOUND)


def stalled_socket(port: int) -> socket.socket:
    """A WebSocket on /ws/ whose client will never read after the handshake."""
    sock = socket.socket()
    # Before connect, so the client advertises a tiny window from the start.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(BOUND)
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
        dropped_after = seconds_until_dropped(sock, timeout=STALL_SECONDS + BOUND)

    assert dropped_after is not None, server.log_text()
    print(f"stalled client dropped after {dropped_after:.2f} s")
    # Never before the timeout (its timer starts after our frame arrived); how much later
    # depends on how busy the machine is.
    assert dropped_after > STALL_SECONDS - 0.1
    assert f"has not drained for {STALL_SECONDS} s" in server.log_text()


def test_flood_to_stalled_client_is_cut_at_the_backlog_limit(
    serve: Callable[..., Served],
) -> None:
    # A stall timeout out of reach, so that only the backlog limit can act.
    server = serve(stall_seconds=100 * BOUND)
    peak_before = server.peak_rss_kib()
    with stalled_socket(server.port) as sock:
        send_text(sock, "flood")
        dropped_after = seconds_until_dropped(sock, timeout=BOUND)
        # The app keeps sending after the drop; wait until all 120 MB went through Daphne.
        server.wait_for_log(f"sent {MODES['flood'][0]} frames", timeout=BOUND)
    growth_mib = (server.peak_rss_kib() - peak_before) / 1024

    assert dropped_after is not None, server.log_text()
    print(f"flooded client dropped after {dropped_after:.2f} s, peak RSS +{growth_mib:.1f} MiB")
    assert "queued while its send buffer was full" in server.log_text()
    assert "has not drained" not in server.log_text()
    # 120 MB were sent; what the server held for the client is about 1 MiB.
    assert growth_mib < 16


def test_reading_client_receives_the_whole_stream(serve: Callable[..., Served]) -> None:
    # The production stall timeout: a client that reads catches up within it, however busy
    # the machine.
    server = serve(stall_seconds=10)
    received = 0
    started = time.monotonic()
    with connect(
        f"ws://127.0.0.1:{server.port}/ws/", open_timeout=BOUND, close_timeout=BOUND
    ) as ws:
        ws.send("stream")
        while (message := ws.recv(timeout=BOUND)) != "done":
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
        timeout=BOUND,
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


# The guard's decisions, on a timer the test runs by hand


@dataclass
class Timer:
    when: float
    callback: Callable[..., None]
    args: tuple[object, ...]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class HandRunLoop:
    """The loop's call_later for StallGuard; time moves only in advance()."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[Timer] = []

    def call_later(self, delay: float, callback: Callable[..., None], *args: object) -> Timer:
        timer = Timer(self.now + delay, callback, args)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for timer in self.timers:
            if not timer.cancelled and timer.when <= self.now:
                timer.cancelled = True  # fired
                timer.callback(*timer.args)


class Aborts:
    """Stands in for the protocol: what it was told to abort, and why."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def abort_slow_client(self, reason: str) -> None:
        self.reasons.append(reason)


@pytest.fixture
def hand_run(monkeypatch: pytest.MonkeyPatch) -> HandRunLoop:
    loop = HandRunLoop()
    monkeypatch.setattr(asyncio, "get_running_loop", lambda: loop)
    return loop


def guard(protocol: Aborts, *, stall_seconds: float = 10, max_backlog: int = 1000) -> Any:
    from config.serve import StallGuard

    return StallGuard(protocol, stall_seconds=stall_seconds, max_backlog=max_backlog)  # type: ignore[arg-type]


def test_a_stall_is_dropped_at_the_timeout_and_not_before(hand_run: HandRunLoop) -> None:
    protocol = Aborts()
    stall = guard(protocol)
    stall.pauseProducing()
    hand_run.advance(5)
    stall.pauseProducing()  # Twisted pauses again on every write: the clock runs on
    hand_run.advance(4.9)
    assert protocol.reasons == []
    hand_run.advance(0.1)
    assert protocol.reasons == ["its send buffer has not drained for 10 s"]


def test_a_client_that_catches_up_starts_afresh(hand_run: HandRunLoop) -> None:
    protocol = Aborts()
    stall = guard(protocol)
    stall.pauseProducing()
    stall.wrote(900)
    hand_run.advance(9)
    stall.resumeProducing()  # all sent: the client read it
    stall.pauseProducing()
    stall.wrote(900)  # the backlog counts from the new pause
    hand_run.advance(9)
    assert protocol.reasons == []


def test_writes_while_paused_are_dropped_beyond_the_backlog(hand_run: HandRunLoop) -> None:
    protocol = Aborts()
    stall = guard(protocol)
    stall.wrote(5000)  # not paused: Twisted took it all, nothing waits
    stall.pauseProducing()
    stall.wrote(1000)
    assert protocol.reasons == []
    stall.wrote(1)
    assert protocol.reasons == ["1001 bytes queued while its send buffer was full"]


def test_the_application_is_loaded_and_what_lives_kept_out_of_the_collectors_rounds() -> None:
    import gc

    from config.serve import keep_startup_objects

    sys.modules.pop("tests.config.upload_site", None)
    before = gc.get_freeze_count()
    try:
        keep_startup_objects("tests.config.upload_site")
        assert "tests.config.upload_site" in sys.modules
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
