"""Daphne, plus bounds on what a client can make the server hold: request bodies in memory
within a limit (config/request_bodies.py), and what a client that stops reading makes it
buffer.

Run it exactly like Daphne, with two more flags::

    python -m config.serve --websocket-stall-timeout 10 --websocket-max-backlog 1048576 \\
        [daphne arguments] config.asgi:application

Daphne writes every outgoing WebSocket frame with ``transport.write``, and Twisted keeps
whatever the kernel will not take, without limit: a client that stops reading (its TCP
window full) while still answering pings makes the process grow with every event sent to
it. Twisted's producer API is the public signal for this: a streaming producer registered
on the transport is paused once more than ``bufferSize`` (64 KiB) waits unsent, and resumed
only when all of it has gone out. A socket that stays paused longer than the stall timeout,
or is sent more than the backlog limit while paused, is aborted.

Twisted has no public figure for the bytes it holds (only the internals ``dataBuffer``,
``offset`` and ``_tempDataLen``), so the backlog counts what we write while paused: when
Twisted pauses us it holds at most ``bufferSize`` plus the write that tipped it over, so
this count bounds what it holds beyond 64 KiB, and is exact for a client that reads nothing.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib
import logging
import os
from typing import Any

import django
from daphne.cli import CommandLineInterface as DaphneCommandLineInterface
from daphne.server import Server as DaphneServer
from daphne.ws_protocol import WebSocketProtocol
from django.db import connections
from twisted.internet.interfaces import IAddress, IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer  # type: ignore[import-untyped]

from config.request_bodies import BoundedWebRequest

logger = logging.getLogger(__name__)

DEFAULT_STALL_SECONDS = 10.0
DEFAULT_MAX_BACKLOG = 1024 * 1024


@implementer(IPushProducer)
class StallGuard:
    """Aborts its WebSocket when Twisted holds back its output for too long or too much."""

    def __init__(
        self, protocol: GuardedWebSocketProtocol, *, stall_seconds: float, max_backlog: int
    ) -> None:
        self.protocol = protocol
        self.stall_seconds = stall_seconds
        self.max_backlog = max_backlog
        self.stall_timer: asyncio.TimerHandle | None = None
        self.backlog = 0  # bytes written since Twisted paused us

    def pauseProducing(self) -> None:
        # Twisted calls this on every write while its buffer is over bufferSize: only the
        # first call of a stall starts the clock. Daphne runs Twisted on the asyncio loop, so
        # the loop's timers are the reactor's.
        if self.stall_timer is None:
            self.stall_timer = asyncio.get_running_loop().call_later(
                self.stall_seconds,
                self.protocol.abort_slow_client,
                f"its send buffer has not drained for {self.stall_seconds:g} s",
            )

    def resumeProducing(self) -> None:
        # Called only once Twisted's buffer is empty again: the client has caught up.
        self.stop()

    def stopProducing(self) -> None:
        self.stop()

    def wrote(self, size: int) -> None:
        if self.stall_timer is None:
            return
        self.backlog += size
        if self.backlog > self.max_backlog:
            self.protocol.abort_slow_client(
                f"{self.backlog} bytes queued while its send buffer was full"
            )

    def stop(self) -> None:
        if self.stall_timer is not None:
            self.stall_timer.cancel()
        self.stall_timer = None
        self.backlog = 0


class GuardedWebSocketProtocol(WebSocketProtocol):
    """Daphne's WebSocket protocol with a StallGuard on its transport."""

    guard: StallGuard | None = None

    def connectionMade(self) -> None:
        super().connectionMade()
        server = self.factory.server_class  # Daphne's name for its Server
        self.guard = StallGuard(
            self, stall_seconds=server.stall_seconds, max_backlog=server.max_backlog
        )
        # Daphne hands over the transport of the upgraded HTTP request with twisted.web's
        # HTTPChannel still registered as its producer, which would make registerProducer
        # raise. That channel has no response left to pause, so the guard takes its place.
        self.transport.unregisterProducer()
        self.transport.registerProducer(self.guard, True)

    def connectionLost(self, reason: Failure) -> None:
        # An abort unregisters the guard, so Twisted's stopProducing may never reach it.
        if self.guard is not None:
            self.guard.stop()
        super().connectionLost(reason)

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        # Every frame autobahn sends (messages, pings, close) passes through here.
        super().sendData(data, sync, chopsize)
        if self.guard is not None:
            self.guard.wrote(len(data))

    def serverSend(self, content: str | bytes, binary: bool = False) -> None:
        # Daphne learns of an abort only on the next reactor turn. Until then drop the app's
        # frames, as Daphne does for any closed socket, instead of raising into the app.
        if self.state == self.STATE_CLOSED:
            return
        super().serverSend(content, binary)

    def abort_slow_client(self, reason: str) -> None:
        """Drop the TCP connection at once, discarding what Twisted holds for it."""
        if self.guard is not None:
            self.guard.stop()
        logger.warning("Dropping WebSocket %s: %s", self.client_addr, reason)
        self.wasClean = False
        self.wasNotCleanReason = reason
        self.dropConnection(abort=True)


class Server(DaphneServer):
    """Daphne's server: request bodies through BoundedWebRequest, WebSockets through
    GuardedWebSocketProtocol."""

    def __init__(
        self,
        *args: Any,
        stall_seconds: float = DEFAULT_STALL_SECONDS,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        **kwargs: Any,
    ) -> None:
        self.stall_seconds = stall_seconds
        self.max_backlog = max_backlog
        self._then_ready = kwargs.pop("ready_callable", None)
        super().__init__(*args, ready_callable=self._use_guarded_protocol, **kwargs)

    def _use_guarded_protocol(self) -> None:
        # Daphne builds its WebSocket factory inside run() and has no option for the
        # protocol class; ready_callable runs after that, before the reactor accepts anyone.
        self.ws_factory.protocol = GuardedWebSocketProtocol
        # Likewise Daphne's HTTP factory gives every connection its own request class.
        http_factory = self.http_factory
        build_daphne_protocol = http_factory.buildProtocol

        def build_protocol(addr: IAddress) -> Any:
            protocol = build_daphne_protocol(addr)
            protocol.requestFactory = BoundedWebRequest
            return protocol

        http_factory.buildProtocol = build_protocol
        if self._then_ready is not None:
            self._then_ready()


class CommandLineInterface(DaphneCommandLineInterface):
    """Daphne's command line, plus the two limits for clients that stop reading."""

    def __init__(self) -> None:
        super().__init__()
        self.parser.add_argument(
            "--websocket-stall-timeout",
            type=float,
            default=DEFAULT_STALL_SECONDS,
            metavar="SECONDS",
            help="Seconds a WebSocket's send buffer may stay full before the socket is dropped",
        )
        self.parser.add_argument(
            "--websocket-max-backlog",
            type=int,
            default=DEFAULT_MAX_BACKLOG,
            metavar="BYTES",
            help="Bytes that may be queued for a WebSocket while its send buffer is full "
            "before the socket is dropped",
        )

    def run(self, args: list[str]) -> None:
        options = self.parser.parse_args(args)
        if options.websocket_stall_timeout <= 0 or options.websocket_max_backlog <= 0:
            self.parser.error("the stall timeout and the backlog limit must be positive")
        refuse_unapplied_erasures()
        keep_startup_objects(options.application)
        # Daphne's run() parses the arguments again and builds server_class from its own.
        self.server_class = functools.partial(
            Server,
            stall_seconds=options.websocket_stall_timeout,
            max_backlog=options.websocket_max_backlog,
        )
        super().run(args)


def refuse_unapplied_erasures() -> None:
    """Stop before serving a database that holds a family the erasure register names as
    erased (a backup restored without `manage.py restore`): nobody may read it again."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from dienstweg.erasure_register import startup_problem  # needs Django set up

    try:
        problem = startup_problem()
    finally:
        connections.close_all()
    if problem is not None:
        logger.critical("%s", problem)
        raise SystemExit(f"Dienstweg startet nicht: {problem}")


def keep_startup_objects(application: str | None) -> None:
    """Load the application, then move all that is alive to the garbage collector's
    permanent generation (gc.freeze): Django's and our modules, models and routes live as
    long as the process, and every full collection walked them again. bench/step4.py at 20
    messages/s: 2-6 ms less CPU per message, in four pairs of runs out of four."""
    if application:
        importlib.import_module(application.split(":", 1)[0])
    gc.collect()
    gc.freeze()


if __name__ == "__main__":
    CommandLineInterface.entrypoint()
