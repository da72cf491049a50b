"""Step 4 benchmark: live messaging under load, against a bare Channels broadcast consumer.

    DATABASE_URL=postgres://root@127.0.0.1:5432/dienstweg_bench4 \
    REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/step4.py [--step-seconds 20 --max-steps 8 --idle-sockets 1000]

1. Drops and creates the database named in DATABASE_URL (its name must contain "bench"),
   migrates it and builds, through the real actions, 20 referral threads of 5 readers
   each: a project with one coach registers a family, records its consent and refers it to
   an authority with four caseworkers; the thread of the referral has those five readers.
   Each of the 100 staff gets an authenticator and a verified session (as step 2 does).
   Then VACUUM (ANALYZE), as autovacuum would have done on a live database.
2. Starts two Daphne processes with the Makefile's DAPHNE_LIMITS: the platform
   (config.asgi, DEBUG off, secrets generated for this run and shared with this
   process, the per-user frame limit raised) and the baseline bench/bare_consumer.py (no
   auth, no database, a group per thread), both on the same channels_redis Pub/Sub layer.
3. Idle sockets: opens IDLE_SOCKETS verified sockets (the 100 sessions, several tabs
   each) and reads the Daphne process's VmRSS before and after; the same on the baseline.
4. Load: 100 clients (one per reader) send message.send frames at a fixed total rate for
   STEP_SECONDS, the rate rising step by step (20, 50, 100, 150, 200, 300, 500, 800 /s)
   until a server no longer keeps up (a loss, an error or p99 over 250 ms), the platform
   and the baseline alternating at each rate. Every reader measures the delay from send to
   message.new (the sender its message.ack as well), counts what did not arrive within
   GRACE seconds after the step, and error frames and closed sockets.
5. Prints a table and writes bench/results/step4.json with the conditions.

The load generator runs in this process (asyncio + websockets), the servers in their own.
Everything stops by itself (a watchdog ends the run after --timeout seconds) and the
servers are stopped on exit, Ctrl+C and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ctypes
import json
import os
import platform
import random
import re
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results" / "step4.json"

# Targets of the issue.
TARGET_RATE = 150.0  # messages/s sent that must be kept up with (two processes)
TARGET_P99_LOW_MS = 50.0  # p99 at the lowest rate
TARGET_IDLE_KB = 100.0  # Daphne memory per idle verified socket
KEEP_UP_P99_MS = 250.0  # a step keeps up: no loss, no error, p99 within this
TARGET_CPU_MS = 7.0  # Daphne + PostgreSQL CPU per message sent (step 10) ...
TARGET_CPU_RATIO = 3.0  # ... or at most this many times the bare consumer's

THREADS = 20
READERS = 5  # per thread: the project's coach and four caseworkers of the receiving agency
RATES = [20, 50, 100, 150, 200, 300, 500, 800, 1200]
AUTHORITY_KINDS = [
    ("jobcenter", "sgb_ii", "Jobcenter"),
    ("jugendamt", "sgb_viii", "Amt für Jugend und Familie"),
    ("sozialamt", "sgb_xii", "Sozialamt"),
    ("familienkasse", "other", "Familienkasse"),
    ("but_office", "sgb_ii", "BuT-Stelle"),
]
FILLER = "Guten Tag, die Unterlagen für den Antrag liegen vor; der Termin am Dienstag passt."


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--step-seconds", type=float, default=20.0, help="sending time per step")
    parser.add_argument("--max-steps", type=int, default=8, help="rates tried at most")
    parser.add_argument(
        "--rates",
        default=",".join(str(rate) for rate in RATES),
        help="total messages/s sent, one per step (comma-separated)",
    )
    parser.add_argument("--grace", type=float, default=5.0, help="seconds to wait for stragglers")
    parser.add_argument("--idle-sockets", type=int, default=1000)
    parser.add_argument(
        "--rate-frames",
        type=int,
        default=1_000_000,
        help="DIENSTWEG_WS_RATE_FRAMES for the server (frames per user and 10 s window)",
    )
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--timeout", type=int, default=1800, help="watchdog: end the run after")
    parser.add_argument("--debug", action="store_true", help="run the server with DEBUG on")
    parser.add_argument(
        "--server-settings",
        default="config.settings",
        help="DJANGO_SETTINGS_MODULE of the platform's Daphne (to try a change of settings; "
        "a module outside the project needs PYTHONPATH)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="Daphne processes of the platform (production runs several behind nginx); "
        "the baseline runs one",
    )
    parser.add_argument(
        "--no-read",
        action="store_true",
        help="do not send the read frame a browser tab sends for each message it shows "
        "(the load of the runs before step 10)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


ARGS = parse_args()
STEP_RATES = [float(rate) for rate in ARGS.rates.split(",") if rate.strip()][: ARGS.max_steps]

if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
    sys.exit("DATABASE_URL (a PostgreSQL *bench* database) and REDIS_URL must be set")


def generated_secrets() -> dict[str, str]:
    """Fresh secrets for this run, shared by this process and the server (sessions are
    signed with the secret key, the vault's data keys wrapped by the master key), so that
    the server runs with DEBUG off as in production."""
    raw = secrets.token_bytes(32)
    return {
        "DIENSTWEG_SECRET_KEY": secrets.token_urlsafe(50),
        "DIENSTWEG_MASTER_KEYS": "1:" + base64.b64encode(raw).decode(),
        "DIENSTWEG_BLIND_INDEX_KEY": secrets.token_urlsafe(50),
        "DIENSTWEG_BACKUP_CODE_KEY": secrets.token_urlsafe(50),
        "DIENSTWEG_AUDIT_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }


# Before Django reads its settings: secrets of this run, DEBUG as the server will have it.
os.environ.update(generated_secrets())
os.environ["DIENSTWEG_DEBUG"] = "true" if ARGS.debug else "false"

# step2 reads its own command line when imported (and sets Django up, and turns DEBUG
# off unless --debug): hand it only what it understands.
sys.path.insert(0, str(BENCH))
_argv, sys.argv = sys.argv, [str(BENCH / "step2.py"), *(["--debug"] if ARGS.debug else [])]
try:
    import step2
finally:
    sys.argv = _argv

import psycopg  # noqa: E402
import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402

from dienstweg import actions as family_actions  # noqa: E402
from dienstweg.models import (  # noqa: E402
    Agency,
    Consent,
    DataCategory,
    HouseholdMember,
    Membership,
    Purpose,
    User,
)
from messaging import actions as messaging_actions  # noqa: E402
from messaging.access import thread_readers  # noqa: E402
from referrals.actions import steps as referral_actions  # noqa: E402

# The setup sends no e-mail (without DEBUG the backend would be SMTP to localhost).
settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# 1. Threads, readers, sessions


@dataclass
class Reader:
    """One participant of one thread, with the cookie of her verified session."""

    index: int
    user_id: int
    thread: str
    cookie: str


def isolate_user_ids() -> int:
    """Start the user ids of this run far from anybody else's. The channel layer's groups
    (staff.<id>) and the frame counters (ws-frames:<id>) are named by user id, and Redis
    Pub/Sub channels are server-wide (the database number does not separate them): on a
    shared Redis, a test server's staff.3 would otherwise receive this run's events (which
    it cannot decrypt, and closes the socket) and the other way round."""
    start = 10**9 + secrets.randbelow(10**6) * 1000
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('dienstweg_user', 'id'), %s, false)", [start]
        )
    return start


def staff(email: str, name: str, agency: Agency, role: str) -> User:
    user = family_actions.create_staff(email, full_name=name, password=None)
    family_actions.add_membership(user, agency=agency, role=role, by=None)
    return user


def build_threads(rng: random.Random) -> list[Reader]:
    """THREADS referrals through the real actions; returns their readers with sessions."""
    today = timezone.localdate()
    readers: list[Reader] = []
    for number in range(THREADS):
        project = family_actions.create_agency(
            name=f"Familiencoaching Bench {number + 1:02d}",
            kind=Agency.Kind.PROJECT,
            rechtskreis=Agency.Rechtskreis.OTHER,
        )
        kind, rechtskreis, label = AUTHORITY_KINDS[number % len(AUTHORITY_KINDS)]
        office = family_actions.create_agency(
            name=f"{label} Bench {number + 1:02d}", kind=kind, rechtskreis=rechtskreis
        )
        last = rng.choice(step2.LAST)
        coach = staff(
            f"coach.{number}@bench.example.org", f"Coach {last}", project, Membership.Role.COACH
        )
        caseworkers = [
            staff(
                f"case.{number}.{index}@bench.example.org",
                f"Fallbearbeitung {rng.choice(step2.LAST)}",
                office,
                Membership.Role.CASEWORKER,
            )
            for index in range(READERS - 1)
        ]
        family = family_actions.register_family(
            owner=project,
            members=[
                family_actions.MemberData(
                    HouseholdMember.Kind.ADULT,
                    rng.choice(step2.FIRST_ADULT),
                    last,
                    date(1985, 1, 1) + timedelta(days=rng.randint(0, 5000)),
                ),
                family_actions.MemberData(
                    HouseholdMember.Kind.CHILD,
                    rng.choice(step2.FIRST_CHILD),
                    last,
                    date(2014, 1, 1) + timedelta(days=rng.randint(0, 3000)),
                ),
            ],
            address=f"{rng.choice(step2.STREETS)} {rng.randint(1, 120)}, 45964 Gladbeck",
            phone=f"02043 {rng.randint(100000, 999999)}",
            notes=rng.choice(step2.NOTES),
            by=coach,
        )
        adult = family.members.get(kind=HouseholdMember.Kind.ADULT)
        family_actions.grant_consent(
            family,
            data=family_actions.ConsentData(
                recipients=[office],
                categories=[DataCategory.IDENTITY, DataCategory.EMPLOYMENT],
                purposes=[Purpose.REFERRAL],
                valid_from=today,
                valid_until=today + timedelta(days=365),
                given_by=adult,
                capacity=Consent.Capacity.ADULT_SELF,
                method=Consent.Method.ORAL_RECORDED,
                text_version=settings.CONSENT_TEXT_VERSION,
                witness_note="Belehrung im Beisein einer Kollegin",
            ),
            by=coach,
        )
        referral = referral_actions.refer_family(
            family,
            data=referral_actions.ReferralData(
                to_agency=office,
                need="Arbeitsvermittlung in Teilzeit",
                summary="Mutter sucht vormittags Arbeit; Unterlagen liegen vor.",
                categories=[DataCategory.IDENTITY, DataCategory.EMPLOYMENT],
            ),
            send=True,
            by=coach,
        )
        thread = messaging_actions.open_referral_thread(referral, by=coach)
        people = [coach, *caseworkers]
        expected = sorted(user.pk for user in people)
        assert thread_readers(thread) == expected, f"thread {thread.pk}: readers differ"
        for user in people:
            client = step2.verified_client(user)
            cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
            readers.append(Reader(len(readers), user.pk, str(thread.pk), cookie))
    print(f"{THREADS} referral threads, {len(readers)} readers with verified sessions")
    return readers


# 2. Servers and what they cost


def daphne_limits() -> list[str]:
    """The flags of the Makefile's DAPHNE_LIMITS and SLOW_CLIENT_LIMITS: production runs
    config.serve with the same."""
    makefile = (ROOT / "Makefile").read_text()
    flags = []
    for name in ("DAPHNE_LIMITS", "SLOW_CLIENT_LIMITS"):
        match = re.search(rf"^{name}\s*:?=\s*(.+)$", makefile, re.MULTILINE)
        if match is None:
            sys.exit(f"no {name} in the Makefile")
        flags += match.group(1).split()
    return flags


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:
    # If this process is killed outright, the kernel stops the server too (Linux).
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def proc_stat(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()  # fields after "pid (comm)", from state on


def process_cpu(pid: int, children: bool = False) -> float:
    """CPU seconds of a process (all its threads), with its reaped children if CHILDREN."""
    fields = proc_stat(pid)
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / CLOCK_TICKS


class Server:
    """One Daphne process, started and stopped by this benchmark."""

    def __init__(self, name: str, application: str, env: dict[str, str]) -> None:
        self.name = name
        self.application = application
        self.env = env
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = BENCH / "results" / f"step4_{name}.log"
        self.log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = self.log_path.open("wb")
        command = [sys.executable, "-m", "config.serve", *daphne_limits()]
        command += ["-b", "127.0.0.1", "-p", str(self.port), self.application]
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            command,
            cwd=ROOT,
            # Each process is a site of its own: its sockets come from its exact origin.
            env={**self.env, "DIENSTWEG_BASE_URL": f"http://127.0.0.1:{self.port}"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"{self.name}: Daphne ended at start-up; see {self.log_path}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                print(f"{self.name}: Daphne pid {self.pid} on 127.0.0.1:{self.port}")
                return
            except OSError:
                time.sleep(0.2)
        sys.exit(f"{self.name}: Daphne did not listen within 60 s; see {self.log_path}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.log is not None:
            self.log.close()
            self.log = None

    def cpu(self) -> float:
        return process_cpu(self.pid)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def port_for(self, index: int) -> int:
        return self.port


class ServerGroup:
    """Several Daphne processes of one application sharing the channel layer, as in
    production behind nginx; each reader connects to one of them (round robin)."""

    def __init__(self, name: str, application: str, env: dict[str, str], count: int) -> None:
        self.name = name
        self.servers = [Server(f"{name}-{n}", application, env) for n in range(count)]
        self.log_path = self.servers[0].log_path

    @property
    def pid(self) -> int:
        return self.servers[0].pid

    def start(self) -> None:
        for server in self.servers:
            server.start()

    def alive(self) -> bool:
        return all(server.alive() for server in self.servers)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def cpu(self) -> float:
        return sum(server.cpu() for server in self.servers)

    def rss_kb(self) -> int:
        return sum(server.rss_kb() for server in self.servers)

    def port_for(self, index: int) -> int:
        return self.servers[index % len(self.servers)].port


def postgres_cpu(database: str | None = None) -> float | None:
    """CPU seconds of the PostgreSQL server: its live processes plus what the postmaster
    reaped (with CONN_MAX_AGE=0 backends live for one call; their time lands there). With
    DATABASE, only the backends connected to it: another engineer's benchmark on the same
    server would otherwise count as ours (the platform's pooled connections live for the
    whole run, so little of its time goes to the postmaster)."""
    total = 0.0
    found = False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            if database is not None:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if f" {database} " not in f" {title} ":
                    continue
                total += process_cpu(int(entry.name))
                found = True
                continue
            fields = proc_stat(int(entry.name))
            parent = Path(f"/proc/{fields[1]}/comm").read_text().strip()
            postmaster = parent != "postgres"
            total += process_cpu(int(entry.name), children=postmaster)
            found = True
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile
    return total if found else None


def machine_busy() -> tuple[float, float]:
    """Busy and total CPU seconds of the machine, all cores (/proc/stat)."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    total = sum(values[:8])
    idle = values[3] + values[4]
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Meters:
    """CPU of each party, the database's counters and Redis's commands over a window."""

    def __init__(self, servers: dict[str, ServerGroup], redis_client: Any, pg: Any) -> None:
        self.servers = servers
        self.redis = redis_client
        self.pg = pg

    def read(self) -> dict[str, Any]:
        info = self.redis.info("cpu")
        commands = self.redis.info("commandstats")
        row = self.pg.execute(
            "SELECT sessions, xact_commit, tup_inserted FROM pg_stat_database "
            "WHERE datname = current_database()"
        ).fetchone()
        busy, total = machine_busy()
        return {
            "at": time.perf_counter(),
            "servers": {
                name: server.cpu() for name, server in self.servers.items() if server.alive()
            },
            "postgres": postgres_cpu(connection.settings_dict["NAME"]),
            "postgres_all": postgres_cpu(),
            "redis": float(info["used_cpu_sys"]) + float(info["used_cpu_user"]),
            # Our own INFO calls left out; Redis is shared, other clients count too.
            "redis_commands": sum(
                stat["calls"] for name, stat in commands.items() if name != "cmdstat_info"
            ),
            "pg_sessions": row[0],
            "pg_commits": row[1],
            "pg_inserts": row[2],
            "generator": own_cpu(),
            "machine_busy": busy,
            "machine_total": total,
        }

    @staticmethod
    def window(before: dict[str, Any], after: dict[str, Any], name: str) -> dict[str, Any]:
        """Shares of one core (100 = one core busy) over the window, for server NAME."""
        seconds = after["at"] - before["at"]

        def share(key: str) -> float | None:
            if before.get(key) is None or after.get(key) is None:
                return None
            return round(100 * (after[key] - before[key]) / seconds, 1)

        server = None
        if name in before["servers"] and name in after["servers"]:
            used = after["servers"][name] - before["servers"][name]
            server = round(100 * used / seconds, 1)
        machine = (after["machine_busy"] - before["machine_busy"]) / max(
            after["machine_total"] - before["machine_total"], 1e-9
        )
        return {
            "seconds": round(seconds, 2),
            "server_cpu": server,
            "postgres_cpu": share("postgres"),  # the bench database's backends
            "postgres_all_cpu": share("postgres_all"),  # the whole server, shared
            "redis_cpu": share("redis"),
            "generator_cpu": share("generator"),
            "machine_busy_pct": round(100 * machine, 1),
            "redis_commands": after["redis_commands"] - before["redis_commands"],
            "pg_sessions": after["pg_sessions"] - before["pg_sessions"],
            "pg_commits": after["pg_commits"] - before["pg_commits"],
            "pg_inserts": after["pg_inserts"] - before["pg_inserts"],
        }


# 3./4. Sockets and load


def per_message_ms(share: float | None, window: dict[str, Any], sent: int) -> float | None:
    """CPU milliseconds per message sent, from a share of one core over the window."""
    if share is None:
        return None
    return round(share / 100 * window["seconds"] * 1000 / sent, 2)


def background_busy(seconds: float = 3.0) -> float:
    """How busy the machine is before anything of this benchmark runs (% of all cores)."""
    busy, total = machine_busy()
    time.sleep(seconds)
    busy_after, total_after = machine_busy()
    return round(100 * (busy_after - busy) / max(total_after - total, 1e-9), 1)


def percentiles(samples: list[float]) -> dict[str, float] | None:
    if len(samples) < 2:
        return None
    return step2.percentiles(samples)


@dataclass
class StepStats:
    """What one step on one server sent and what reached whom, in time."""

    number: int
    readers_of: dict[str, list[int]]
    sent: int = 0
    reads: int = 0  # read frames sent (one per message shown past the tab's marker)
    late_sends: int = 0  # sends more than 50 ms after their planned time (generator behind)
    sent_to: dict[tuple[int, int], str] = field(default_factory=dict)
    delivered: set[tuple[int, int, int]] = field(default_factory=set)
    acked: set[tuple[int, int]] = field(default_factory=set)
    new_ms: list[float] = field(default_factory=list)
    ack_ms: list[float] = field(default_factory=list)
    duplicates: int = 0
    misrouted: int = 0  # a message.new on a socket whose user does not read that thread
    after_deadline: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    closed: bool = False  # past its deadline: later frames count as after_deadline

    def expected(self) -> int:
        return sum(len(self.readers_of[thread]) for thread in self.sent_to.values())

    def complete(self) -> bool:
        return len(self.delivered) >= self.expected() and len(self.acked) >= self.sent


@dataclass
class Client:
    reader: Reader
    socket: ClientConnection
    task: asyncio.Task[None] | None = None
    read_seq: int = 0  # the highest number this tab has reported as read


class Load:
    """The sockets of one server and the steps run on them."""

    def __init__(self, name: str, server: ServerGroup, readers: list[Reader]) -> None:
        self.name = name
        self.server = server
        self.readers = readers
        self.clients: list[Client] = []
        self.steps: dict[int, StepStats] = {}
        self.current: StepStats | None = None
        self.readers_of: dict[str, list[int]] = {}
        for reader in readers:
            self.readers_of.setdefault(reader.thread, []).append(reader.index)
        self.failed = False
        self.results: list[dict[str, Any]] = []

    def url(self, reader: Reader) -> str:
        port = self.server.port_for(reader.index)
        if self.name == "dienstweg":
            return f"ws://127.0.0.1:{port}/ws/"
        return f"ws://127.0.0.1:{port}/ws/{reader.thread}/"

    async def open(self, reader: Reader) -> ClientConnection:
        return await connect(
            self.url(reader),
            origin=f"http://127.0.0.1:{self.server.port_for(reader.index)}",  # type: ignore[arg-type]
            additional_headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={reader.cookie}"},
            open_timeout=30,
            close_timeout=5,
            ping_interval=None,  # Daphne pings (--ping-interval); the client answers
            compression=None,  # Daphne offers no permessage-deflate
            max_queue=None,  # read at once: no back-pressure from the generator
        )

    async def connect_all(self) -> None:
        for offset in range(0, len(self.readers), 20):
            batch = self.readers[offset : offset + 20]
            sockets = await asyncio.gather(*(self.open(reader) for reader in batch))
            for reader, ws in zip(batch, sockets, strict=True):
                client = Client(reader, ws)
                client.task = asyncio.create_task(self.receive(client))
                self.clients.append(client)

    async def close_all(self) -> None:
        await asyncio.gather(
            *(client.socket.close() for client in self.clients), return_exceptions=True
        )
        for client in self.clients:
            if client.task is not None:
                client.task.cancel()
        self.clients = []

    async def receive(self, client: Client) -> None:
        me = client.reader
        try:
            async for raw in client.socket:
                now = time.perf_counter()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind in ("message.new", "message.ack"):
                    self.arrived(me, kind, frame["message"].get("body", ""), now)
                    if kind == "message.ack":  # posting marked it read (live.js)
                        seq = frame["message"].get("seq")
                        client.read_seq = max(client.read_seq, seq if isinstance(seq, int) else 0)
                    await self.mark_read(client, frame["message"])
                elif kind == "error" and self.current is not None:
                    self.current.errors[f"error:{frame.get('code')}"] += 1
        except ConnectionClosed as closed:
            if self.current is not None:
                code = closed.rcvd.code if closed.rcvd is not None else "none"
                self.current.errors[f"closed:{code}"] += 1

    async def mark_read(self, client: Client, message: dict[str, Any]) -> None:
        """What live.js does for each message it shows in the open thread (markRead, on
        message.new and message.ack alike): report it read if it is past the tab's marker,
        which an ack moves to the message posted (post_message marked it read)."""
        seq = message.get("seq")
        if ARGS.no_read or not isinstance(seq, int) or seq <= client.read_seq:
            return
        client.read_seq = seq
        frame = {"type": "read", "thread": client.reader.thread, "seq": seq}
        with contextlib.suppress(ConnectionClosed):  # counted by the receive loop
            await client.socket.send(json.dumps(frame))
        if self.current is not None:
            self.current.reads += 1

    def arrived(self, me: Reader, kind: str, body: str, now: float) -> None:
        parts = body.split(" ", 5)
        if len(parts) < 5 or parts[0] != "bench":
            return
        stats = self.steps.get(int(parts[1]))
        if stats is None:
            return
        sender, number, sent_at = int(parts[2]), int(parts[3]), float(parts[4])
        if stats.closed:
            stats.after_deadline += 1
            return
        key = (sender, number, me.index)
        if kind == "message.ack":
            if sender == me.index and (sender, number) not in stats.acked:
                stats.acked.add((sender, number))
                stats.ack_ms.append((now - sent_at) * 1000)
                # The ack carries the message: the sender's socket gets no message.new of
                # its own (messaging.consumers), as the bare consumer's sender gets one echo.
                if key not in stats.delivered:
                    stats.delivered.add(key)
                    stats.new_ms.append((now - sent_at) * 1000)
            return
        thread = stats.sent_to.get((sender, number))
        if thread is None or me.index not in self.readers_of[thread]:
            stats.misrouted += 1
            return
        if key in stats.delivered:
            if sender != me.index:  # an older server also sent the sender message.new
                stats.duplicates += 1
            return
        stats.delivered.add(key)
        stats.new_ms.append((now - sent_at) * 1000)

    async def send_loop(
        self, client: Client, stats: StepStats, rate: float, start: float, end: float
    ) -> None:
        interval = 1 / rate
        phase = random.random() * interval  # spread the clients over the interval
        number = 0
        while True:
            planned = start + phase + number * interval
            if planned >= end:
                return
            delay = planned - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.05:
                stats.late_sends += 1
            if not await self.send_frame(client, stats, number):
                return
            number += 1

    async def send_frame(self, client: Client, stats: StepStats, number: int) -> bool:
        me = client.reader
        now = time.perf_counter()
        body = f"bench {stats.number} {me.index} {number} {now:.6f} {FILLER}"
        frame = {
            "type": "message.send",
            "thread": me.thread,
            "client_id": str(uuid.uuid4()),
            "body": body,
        }
        stats.sent_to[(me.index, number)] = me.thread
        try:
            await client.socket.send(json.dumps(frame))
        except ConnectionClosed:
            stats.errors["send_on_closed"] += 1
            return False
        stats.sent += 1
        return True

    async def step(self, number: int, rate: float, meters: Meters) -> dict[str, Any]:
        """Send at RATE messages/s in total for --step-seconds, wait up to --grace for
        the deliveries, and sum up."""
        stats = StepStats(number, self.readers_of)
        self.steps[number] = stats
        self.current = stats
        per_client = rate / len(self.clients)
        lag: list[float] = []
        lag_task = asyncio.create_task(loop_lag(lag))
        before = meters.read()
        start = time.perf_counter() + 0.2
        end = start + ARGS.step_seconds
        await asyncio.gather(
            *(self.send_loop(client, stats, per_client, start, end) for client in self.clients)
        )
        during = meters.read()
        deadline = end + ARGS.grace
        while time.perf_counter() < deadline and not stats.complete():
            await asyncio.sleep(0.05)
        waited = time.perf_counter() - end
        stats.closed = True
        self.current = None
        lag_task.cancel()
        after = meters.read()
        return self.summarise(stats, rate, start, end, waited, lag, before, during, after)

    def summarise(
        self,
        stats: StepStats,
        rate: float,
        start: float,
        end: float,
        waited: float,
        lag: list[float],
        before: dict[str, Any],
        during: dict[str, Any],
        after: dict[str, Any],
    ) -> dict[str, Any]:
        seconds = end - start
        expected = stats.expected()
        loss = expected - len(stats.delivered)
        new = percentiles(stats.new_ms)
        ack = percentiles(stats.ack_ms)
        errors = sum(stats.errors.values())
        counters = Meters.window(before, after, self.name)
        sent = max(stats.sent, 1)
        result = {
            "server": self.name,
            "step": stats.number,
            "target_rate": rate,
            "sent": stats.sent,
            "sent_per_s": round(stats.sent / seconds, 1),
            "read_frames": stats.reads,
            "late_sends": stats.late_sends,
            "expected_deliveries": expected,
            "deliveries": len(stats.delivered),
            "delivered_per_s": round(len(stats.delivered) / READERS / seconds, 1),
            "loss": loss,
            "acks_missing": stats.sent - len(stats.acked),
            "duplicates": stats.duplicates,
            "misrouted": stats.misrouted,
            "after_deadline": stats.after_deadline,
            "errors": errors,
            "error_kinds": dict(stats.errors),
            "waited_after_step_s": round(waited, 2),
            "latency_new_ms": new,
            "latency_ack_ms": ack,
            "generator_loop_lag_ms": percentiles(lag),
            # CPU while sending (a share of one core: 100 = one core busy).
            "cpu_while_sending": Meters.window(before, during, self.name),
            "per_message": {
                "server_cpu_ms": per_message_ms(counters["server_cpu"], counters, sent),
                "postgres_cpu_ms": per_message_ms(counters["postgres_cpu"], counters, sent),
                # Daphne plus PostgreSQL: what the "CPU per message" counts.
                "cpu_ms": per_message_ms(
                    (counters["server_cpu"] or 0) + (counters["postgres_cpu"] or 0), counters, sent
                ),
                "redis_commands": round(counters["redis_commands"] / sent, 2),
                "pg_sessions": round(counters["pg_sessions"] / sent, 2),
                "pg_commits": round(counters["pg_commits"] / sent, 2),
                "pg_inserts": round(counters["pg_inserts"] / sent, 2),
            },
            "load_average": [round(value, 2) for value in os.getloadavg()],
        }
        p99 = new["p99"] if new else float("inf")
        result["keeps_up"] = (
            loss == 0
            and errors == 0
            and stats.sent >= 0.95 * rate * seconds
            and stats.sent > 0
            and p99 <= KEEP_UP_P99_MS
        )
        generator = result["cpu_while_sending"]["generator_cpu"] or 0
        lag_p99 = result["generator_loop_lag_ms"]["p99"] if result["generator_loop_lag_ms"] else 0
        # The generator measures itself as well: beyond these its figures are its own delay.
        result["generator_saturated"] = generator > 85 or lag_p99 > 20
        self.results.append(result)
        print_step(result)
        return result

    async def warm_up(self) -> None:
        """Each client sends one message; all must arrive (the protocol works end to end)."""
        stats = StepStats(0, self.readers_of)
        self.steps[0] = stats
        self.current = stats
        for client in self.clients:
            await self.send_frame(client, stats, 0)
            await asyncio.sleep(0.01)
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline and not stats.complete():
            await asyncio.sleep(0.05)
        stats.closed = True
        self.current = None
        if not stats.complete() or stats.errors:
            raise RuntimeError(
                f"{self.name}: warm-up failed: {len(stats.delivered)} of {stats.expected()} "
                f"delivered, {len(stats.acked)} of {stats.sent} acks, errors "
                f"{dict(stats.errors)}; see {self.server.log_path}"
            )
        print(f"  {self.name}: warm-up ok ({stats.sent} messages, {len(stats.delivered)} frames)")


async def loop_lag(samples: list[float]) -> None:
    """How late this event loop wakes up for a 10 ms sleep (the generator's own delay)."""
    while True:
        planned = time.perf_counter() + 0.01
        await asyncio.sleep(0.01)
        samples.append(max(0.0, (time.perf_counter() - planned) * 1000))


async def idle_sockets(load: Load, count: int) -> dict[str, Any]:
    """Open COUNT idle sockets (round robin over the readers' sessions, that is several
    tabs per session) and read the server's RSS before and after."""
    server = load.server
    await asyncio.sleep(2)
    before = server.rss_kb()
    cpu_before = server.cpu()
    started = time.perf_counter()
    sockets: list[ClientConnection] = []
    refused: Counter[str] = Counter()
    readers = [load.readers[index % len(load.readers)] for index in range(count)]
    for offset in range(0, count, 50):
        batch = await asyncio.gather(
            *(load.open(reader) for reader in readers[offset : offset + 50]),
            return_exceptions=True,
        )
        for outcome in batch:
            if isinstance(outcome, ClientConnection):
                sockets.append(outcome)
            elif isinstance(outcome, InvalidStatus):
                refused[f"http:{outcome.response.status_code}"] += 1
            else:
                refused[type(outcome).__name__] += 1
    opening = time.perf_counter() - started
    await asyncio.sleep(3)
    open_now = sum(1 for ws in sockets if ws.state.name == "OPEN")
    after = server.rss_kb()
    cpu_open = server.cpu() - cpu_before
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    await asyncio.sleep(3)
    closed = server.rss_kb()
    per_socket = (after - before) / len(sockets) if sockets else None
    result = {
        "requested": count,
        "opened": len(sockets),
        "open_after_3s": open_now,
        "refused": dict(refused),
        "seconds_to_open": round(opening, 2),
        "server_cpu_s_to_open": round(cpu_open, 2),
        "rss_before_kb": before,
        "rss_after_kb": after,
        "rss_after_close_kb": closed,
        "kb_per_socket": round(per_socket, 1) if per_socket is not None else None,
    }
    print(
        f"  {load.name}: {len(sockets)} idle sockets ({dict(refused) or 'none refused'}) in "
        f"{opening:.1f} s; RSS {before:,} → {after:,} kB = "
        f"{result['kb_per_socket']} kB per socket; after closing {closed:,} kB"
    )
    return result


def print_step(row: dict[str, Any]) -> None:
    new = row["latency_new_ms"] or {}
    cpu = row["cpu_while_sending"]
    print(
        f"  {row['server']:<9} {row['target_rate']:>6.0f}/s  sent {row['sent_per_s']:>6.1f}/s  "
        f"delivered {row['delivered_per_s']:>6.1f}/s  p50 {new.get('p50', 0):7.1f}  "
        f"p95 {new.get('p95', 0):7.1f}  p99 {new.get('p99', 0):7.1f} ms  loss {row['loss']:>5}  "
        f"errors {row['errors']:>3}  CPU server {cpu['server_cpu']}% pg {cpu['postgres_cpu']}% "
        f"redis {cpu['redis_cpu']}% gen {cpu['generator_cpu']}% "
        f"machine {cpu['machine_busy_pct']}%  "
        f"{'keeps up' if row['keeps_up'] else 'DOES NOT KEEP UP'}"
        f"{'  (generator saturated)' if row['generator_saturated'] else ''}",
        flush=True,
    )


async def run_load(
    loads: list[Load], meters: Meters, idle_count: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    idle: dict[str, Any] = {}
    for load in loads:
        with step2.phase(f"{load.name}: connect, warm up, idle sockets"):
            await load.connect_all()
            await load.warm_up()
            idle[load.name] = await idle_sockets(load, idle_count)
    with step2.phase("load steps"):
        for number, rate in enumerate(STEP_RATES, start=1):
            active = [load for load in loads if not load.failed]
            if not active:
                break
            print(f"\n  step {number}: {rate:.0f} messages/s")
            for load in active:
                result = await load.step(number, rate, meters)
                if not result["keeps_up"]:
                    load.failed = True
                    await load.close_all()
                    load.server.stop()  # its backlog must not slow the other server down
                await asyncio.sleep(2)
    for load in loads:
        await load.close_all()
    return idle, {load.name: load.results for load in loads}


# 5. Report


CODE_MEASURED = [
    "messaging/consumers.py",
    "messaging/actions.py",
    "messaging/access.py",
    "messaging/middleware.py",
    "dienstweg/events.py",
    "config/asgi.py",
    "config/settings.py",
    "referrals/access.py",
    "applications/access.py",
    "bench/bare_consumer.py",
]


def code_fingerprint() -> dict[str, str]:
    return step2.code_fingerprint(CODE_MEASURED)


def conditions(
    pg: Any, redis_client: Any, server_env: dict[str, str], busy_before: float
) -> dict[str, Any]:
    packages = [
        "django",
        "channels",
        "channels_redis",
        "daphne",
        "twisted",
        "autobahn",
        "asgiref",
        "redis",
        "psycopg",
        "websockets",
    ]
    layer = settings.CHANNEL_LAYERS["default"]
    return {
        "date": timezone.now().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "machine_busy_before_start_pct": busy_before,
        "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
        "python": platform.python_version(),
        "versions": {name: version(name) for name in packages},
        "postgresql": pg.execute("SHOW server_version").fetchone()[0],
        "postgresql_max_connections": pg.execute("SHOW max_connections").fetchone()[0],
        "redis": redis_client.info("server")["redis_version"],
        "settings": {
            "module": server_env["DJANGO_SETTINGS_MODULE"],
            "debug": server_env["DIENSTWEG_DEBUG"] == "true",
            # Of config.settings as this process has it (another --server-settings may
            # differ: see the module).
            "conn_max_age": connection.settings_dict.get("CONN_MAX_AGE"),
            "ws_rate_frames": int(server_env["DIENSTWEG_WS_RATE_FRAMES"]),
            "ws_rate_frames_default": 100,
            "ws_rate_window_seconds": settings.WS_RATE_WINDOW_SECONDS,
            "channel_layer": layer["BACKEND"],
            "channel_layer_encrypted": bool(layer["CONFIG"].get("symmetric_encryption_keys")),
            "cache": settings.CACHES["default"]["BACKEND"],
            "daphne_flags": daphne_limits(),
            "secrets": "generated for this run (DEBUG off, as in production)",
        },
        "load": {
            "threads": THREADS,
            "readers_per_thread": READERS,
            "clients": THREADS * READERS,
            "step_seconds": ARGS.step_seconds,
            "grace_seconds": ARGS.grace,
            "rates": STEP_RATES,
            "keeps_up": f"loss 0, errors 0, sent ≥ 95 % of the rate, p99 ≤ {KEEP_UP_P99_MS} ms",
            "generator": "this process: asyncio + websockets, one socket per reader; latency "
            "is send → receipt on the generator's clock, so it includes the generator's own "
            "delay (generator_loop_lag_ms)",
            "cpu_split": "no pinning; the servers, PostgreSQL, Redis and the generator share "
            f"{os.cpu_count()} cores (CPU shares per party are in each step, 100 = one core)",
        },
        "code": code_fingerprint(),
    }


def sustained(results: list[dict[str, Any]]) -> float:
    """The highest rate kept up with, every lower step having kept up too."""
    best = 0.0
    for row in results:
        if not row["keeps_up"]:
            break
        best = row["target_rate"]
    return best


def summary(idle: dict[str, Any], steps: dict[str, list[dict[str, Any]]]) -> list[dict]:
    real, bare = steps["dienstweg"], steps["bare"]
    rate_real, rate_bare = sustained(real), sustained(bare)
    lowest = real[0] if real else None
    p99_low = (lowest["latency_new_ms"] or {}).get("p99") if lowest else None
    per_socket = idle["dienstweg"]["kb_per_socket"]
    bare_open = all(row["keeps_up"] for row in bare) and len(bare) == len(STEP_RATES)
    ratio = rate_real / rate_bare if rate_bare else None
    rows = [
        {
            "figure": "sustained rate (no loss, p99 ≤ 250 ms)",
            "value": f"{rate_real:.0f} msg/s",
            "target": f"≥ {TARGET_RATE:.0f} msg/s",
            "met": rate_real >= TARGET_RATE,
        },
        {
            "figure": f"p99 at {lowest['target_rate']:.0f} msg/s" if lowest else "p99, first step",
            "value": f"{p99_low:.1f} ms" if p99_low is not None else "-",
            "target": f"≤ {TARGET_P99_LOW_MS:.0f} ms",
            "met": p99_low is not None and p99_low <= TARGET_P99_LOW_MS,
        },
        {
            "figure": "memory per idle verified socket",
            "value": f"{per_socket} kB" if per_socket is not None else "-",
            "target": f"≤ {TARGET_IDLE_KB:.0f} kB",
            "met": per_socket is not None and per_socket <= TARGET_IDLE_KB,
        },
        {
            "figure": "baseline sustained rate",
            "value": f"{'≥ ' if bare_open else ''}{rate_bare:.0f} msg/s",
            "target": "-",
            "met": None,
        },
        {
            "figure": "platform / baseline sustained",
            "value": (f"{'≤ ' if bare_open else ''}{ratio:.2f}" if ratio is not None else "-"),
            "target": "-",
            "met": None,
        },
    ]
    # CPU per message, Daphne plus PostgreSQL, against the bare consumer of the same rate in
    # the same run (the issue: ≤ 7 ms, or ≤ 3 × the bare consumer's).
    bare_at = {row["target_rate"]: row for row in bare}
    for row in real:
        other = bare_at.get(row["target_rate"])
        mine = row["per_message"]["cpu_ms"]
        theirs = other["per_message"]["cpu_ms"] if other else None
        ratio_cpu = mine / theirs if mine is not None and theirs else None
        rows.append(
            {
                "figure": f"CPU/message at {row['target_rate']:.0f} msg/s (platform, bare)",
                "value": f"{mine} / {theirs} ms"
                + (f" = {ratio_cpu:.1f}×" if ratio_cpu is not None else ""),
                "target": f"≤ {TARGET_CPU_MS:.0f} ms or ≤ {TARGET_CPU_RATIO:.0f}×",
                "met": mine is not None
                and (mine <= TARGET_CPU_MS or (ratio_cpu is not None and ratio_cpu <= 3)),
            }
        )
    return rows


def print_tables(rows: list[dict], steps: dict[str, list[dict[str, Any]]]) -> None:
    print(
        f"\n{'server':<9} {'rate':>5} {'sent/s':>7} {'deliv/s':>7} {'p50':>7} {'p95':>7} "
        f"{'p99':>7} {'ack p99':>7} {'loss':>6} {'err':>4} {'srv%':>6} {'pg%':>6} {'redis%':>6} "
        f"{'gen%':>6} {'mach%':>6}  keeps up"
    )
    for name in ("dienstweg", "bare"):
        for row in steps[name]:
            new, ack = row["latency_new_ms"] or {}, row["latency_ack_ms"] or {}
            cpu = row["cpu_while_sending"]
            print(
                f"{name:<9} {row['target_rate']:>5.0f} {row['sent_per_s']:>7.1f} "
                f"{row['delivered_per_s']:>7.1f} {new.get('p50', 0):>7.1f} "
                f"{new.get('p95', 0):>7.1f} {new.get('p99', 0):>7.1f} {ack.get('p99', 0):>7.1f} "
                f"{row['loss']:>6} {row['errors']:>4} {cpu['server_cpu'] or 0:>6.1f} "
                f"{cpu['postgres_cpu'] or 0:>6.1f} {cpu['redis_cpu'] or 0:>6.1f} "
                f"{cpu['generator_cpu'] or 0:>6.1f} {cpu['machine_busy_pct']:>6.1f}  "
                f"{'yes' if row['keeps_up'] else 'NO'}"
                f"{' (generator saturated)' if row['generator_saturated'] else ''}"
            )
    width = max(len(row["figure"]) for row in rows)
    print(f"\n{'figure':<{width}}  {'value':>14}  {'target':>14}  met")
    for row in rows:
        met = "-" if row["met"] is None else ("yes" if row["met"] else "NO")
        print(f"{row['figure']:<{width}}  {row['value']:>14}  {row['target']:>14}  {met}")


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def main() -> None:
    # Ctrl+C stops the run even if this process was started with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGALRM, _terminate)
    signal.alarm(ARGS.timeout)  # the watchdog: nothing runs longer than this
    rng = random.Random(ARGS.seed)
    random.seed(ARGS.seed)
    code_at_start = code_fingerprint()
    busy_before = background_busy()
    print(f"machine busy before the run: {busy_before} % of {os.cpu_count()} cores")
    if busy_before > 10:
        print("WARNING: other work is running on this machine; it skews every figure")
    with step2.phase("reset and migrate"):
        step2.reset_database()
        call_command("migrate", verbosity=0)
    with step2.phase("threads, readers and sessions"):
        first_user_id = isolate_user_ids()
        readers = build_threads(rng)
    # As autovacuum would have done: without statistics PostgreSQL planned the readers'
    # rule of every message and read frame over every membership (0.49 ms, 0.14 after).
    with step2.phase("vacuum analyze"):
        step2.vacuum_analyze()
    connection.close()  # the servers have the database to themselves

    server_env = dict(os.environ)
    server_env.update(
        DJANGO_SETTINGS_MODULE=ARGS.server_settings,
        DIENSTWEG_WS_RATE_FRAMES=str(ARGS.rate_frames),
        # The idle sockets are several tabs per session: none may push another out.
        DIENSTWEG_MAX_SOCKETS_PER_USER="1000",
        PYTHONUNBUFFERED="1",
    )
    bare_env = {k: v for k, v in server_env.items() if k != "DJANGO_SETTINGS_MODULE"}
    bare_env["BARE_SECRET"] = server_env["DIENSTWEG_SECRET_KEY"]
    servers = {
        "dienstweg": ServerGroup(
            "dienstweg", "config.asgi:application", server_env, ARGS.processes
        ),
        "bare": ServerGroup("bare", "bench.bare_consumer:application", bare_env, 1),
    }
    redis_client = redis.Redis.from_url(os.environ["REDIS_URL"])
    params = connection.settings_dict
    pg = psycopg.connect(
        dbname=params["NAME"],
        autocommit=True,
        **{
            key: value
            for key, value in {
                "host": params.get("HOST"),
                "port": params.get("PORT"),
                "user": params.get("USER"),
                "password": params.get("PASSWORD"),
            }.items()
            if value
        },
    )
    try:
        for server in servers.values():
            server.start()
        loads = [Load(name, server, readers) for name, server in servers.items()]
        meters = Meters(servers, redis_client, pg)
        step2.CALIBRATION["before_load"] = step2.calibration_ms()
        idle, steps = asyncio.run(run_load(loads, meters, ARGS.idle_sockets))
        step2.CALIBRATION["after_load"] = step2.calibration_ms()
        result_conditions = conditions(pg, redis_client, server_env, busy_before)
    finally:
        for server in servers.values():
            server.stop()
        pg.close()
        signal.alarm(0)
    changed = sorted(
        name for name, digest in code_fingerprint().items() if code_at_start.get(name) != digest
    )
    if changed:
        print(f"\nWARNING: measured code changed during the run: {', '.join(changed)}")
    rows = summary(idle, steps)
    print_tables(rows, steps)
    result = {
        "summary": rows,
        "conditions": result_conditions,
        "python_calibration_ms": step2.CALIBRATION,
        "code_changed_during_run": changed,
        "phases_s": step2.PHASES,
        "load_average_after_phase": step2.LOAD,
        "idle_sockets": idle,
        "steps": steps,
        "sustained_rate": {name: sustained(rows_) for name, rows_ in steps.items()},
        "server_logs": {name: str(server.log_path) for name, server in servers.items()},
        "first_user_id": first_user_id,
    }
    ARGS.output.parent.mkdir(parents=True, exist_ok=True)
    ARGS.output.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"\nwritten to {ARGS.output}")


if __name__ == "__main__":
    main()
