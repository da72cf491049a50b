"""KERN comes from node_modules (npm ci from package-lock.json), never from the repository:
the static finders must find it there, and every page must link it from 'self'."""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.staticfiles import finders
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]


def test_the_lock_file_pins_kern_and_node_modules_stays_out_of_git() -> None:
    lock = json.loads((ROOT / "package-lock.json").read_text())
    entry = lock["packages"]["node_modules/@kern-ux/native"]
    assert entry["integrity"].startswith("sha512-")
    assert "/node_modules/" in (ROOT / ".gitignore").read_text().split()


def test_collectstatic_finds_kern_in_node_modules() -> None:
    for name in ("kern/kern.min.css", "kern/fonts/fira-sans.css"):
        found = finders.find(name)
        assert found is not None, f"{name}: run `make assets` (npm ci)"
        assert "node_modules/@kern-ux/native/dist" in str(found)


def test_pages_link_kern_from_self(db) -> None:
    html = Client().get("/anmelden/").content.decode()
    assert '<link rel="stylesheet" href="/static/kern/kern.min.css">' in html
    assert '<link rel="stylesheet" href="/static/kern/fonts/fira-sans.css">' in html
