"""Every unit in deploy/systemd passes `systemd-analyze verify`: in a root directory of the
test's own that holds the system's units, the units under /etc/systemd/system and, at
/srv/dienstweg/.venv/bin/python, an executable stand-in (verify checks that each command
exists). It prints a unit's errors and warnings but may still exit 0: any output fails."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")
ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is missing (Debian: apt-get install systemd)"
)
@pytest.mark.skipif(not SYSTEM_UNITS.is_dir(), reason=f"{SYSTEM_UNITS} is missing: no system units")
def test_every_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(SYSTEM_UNITS, root / SYSTEM_UNITS.relative_to("/"), symlinks=True)
    units = sorted([*UNITS.glob("*.service"), *UNITS.glob("*.timer")])
    assert len(units) >= 2
    installed = root / "etc" / "systemd" / "system"
    installed.mkdir(parents=True)
    for unit in units:
        shutil.copy(unit, installed / unit.name)
    python = root / "srv" / "dienstweg" / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)

    result = subprocess.run(  # noqa: S603 (systemd's own checker)
        [ANALYZE, "verify", f"--root={root}", *(str(installed / unit.name) for unit in units)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
