"""Watch processes' open files while a request body arrives: none may be a temporary file."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

TEMP_ROOTS = {os.path.realpath(root) for root in ("/tmp", "/var/tmp", tempfile.gettempdir())}  # noqa: S108
TIMEOUT = 30.0


class OpenFileWatch:
    """Reads the open files (/proc/<pid>/fd) of the processes over and over on a thread of
    its own and keeps every suspicious one: a file in WATCHED (nginx's temporary
    directories), or, outside ALLOWED (the processes' own database and logs), an unlinked
    file (tempfile.TemporaryFile's kind) or one in a temporary directory. `scanned()` waits
    until a whole scan has begun and ended after the call. PIDS may be a callable, read at
    every scan."""

    def __init__(
        self,
        pids: Iterable[int] | Callable[[], Iterable[int]],
        *,
        allowed: Path,
        watched: Iterable[Path] = (),
    ) -> None:
        self.pids = pids
        self.allowed = os.path.realpath(allowed)
        self.watched = [os.path.realpath(path) for path in watched]
        self.suspicious: set[str] = set()
        self.scans = 0
        self.changed = threading.Condition()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def suspicious_target(self, target: str) -> bool:
        path = target.removesuffix(" (deleted)")
        if any(path.startswith(watched + os.sep) for watched in self.watched):
            return True
        if path == self.allowed or path.startswith(self.allowed + os.sep):
            # The processes' own files: SQLite opens the directory to sync a journal, and
            # unlinks its -shm file when a connection it takes for the last one closes
            # while another still has it mapped.
            return False
        if path != target:
            return True
        return any(path.startswith(root + os.sep) for root in TEMP_ROOTS)

    def targets(self) -> set[str]:
        found = set()
        pids = self.pids() if callable(self.pids) else self.pids
        for pid in pids:
            fd_dir = f"/proc/{pid}/fd"
            try:
                fds = os.listdir(fd_dir)
            except FileNotFoundError:
                continue  # the process has ended (an nginx worker replaced)
            for fd in fds:
                try:
                    target = os.readlink(f"{fd_dir}/{fd}")
                except FileNotFoundError:
                    continue  # closed meanwhile
                if self.suspicious_target(target):
                    found.add(f"{pid}: {target}")
        return found

    def run(self) -> None:
        while not self.stopped.is_set():
            found = self.targets()
            with self.changed:
                self.suspicious |= found
                self.scans += 1
                self.changed.notify_all()

    def scanned(self) -> None:
        with self.changed:
            wanted = self.scans + 2  # the scan under way may have begun before the call
            assert self.changed.wait_for(lambda: self.scans >= wanted, timeout=TIMEOUT)

    def __enter__(self) -> OpenFileWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=TIMEOUT)


def children_of(pid: int) -> list[int]:
    """The processes whose parent is PID (nginx's workers)."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # The parent's pid is the second field after the command's closing bracket.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry))
    return children
