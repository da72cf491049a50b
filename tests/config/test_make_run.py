"""`make run PORT=…` serves on that port, and the links it sends (e-mails, the stamp's QR
code: settings.DIENSTWEG_BASE_URL) point there too."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def base_url(*arguments: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "DIENSTWEG_BASE_URL"}
    result = subprocess.run(  # noqa: S603
        [  # noqa: S607 (make from the PATH, as the README says)
            "make",
            "--no-print-directory",
            "-s",
            "--eval",
            "show-base-url: ; @echo $$DIENSTWEG_BASE_URL",
            "show-base-url",
            *arguments,
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout.strip()


def test_links_follow_the_port_make_run_serves() -> None:
    assert base_url("PORT=8101") == "http://127.0.0.1:8101"
    assert base_url("HOST=0.0.0.0", "PORT=9000") == "http://0.0.0.0:9000"


def test_a_configured_base_url_wins() -> None:
    assert base_url("DIENSTWEG_BASE_URL=https://dienstweg.example.org") == (
        "https://dienstweg.example.org"
    )
