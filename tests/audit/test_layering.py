"""The floors (STYLE.md, "Where code lives"). Which module may import which is checked by
import-linter in `make test` (pyproject.toml, [tool.importlinter]); these tests keep its
contracts complete, and keep the trail's tables free of foreign keys so that an event
outlives the family and the account it names."""

from __future__ import annotations

import tomllib
from pathlib import Path

from audit.models import AuditEvent, AuditSeal

ROOT = Path(__file__).resolve().parents[2]
LINTER = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
NOT_SHIPPED = {"tests", "bench"}


def our_packages() -> set[str]:
    return {
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if path.parent.name not in NOT_SHIPPED
    }


def contract(kind: str) -> dict:
    [found] = [c for c in LINTER["contracts"] if c["type"] == kind]
    return found


def test_every_package_of_ours_stands_on_a_floor() -> None:
    # A new app left out of the layers would be free to import anything.
    assert set(LINTER["root_packages"]) == our_packages()
    assert set(contract("layers")["layers"]) == our_packages()


def test_floors_run_from_config_down_to_the_trail() -> None:
    layers = contract("layers")["layers"]
    assert layers[0] == "config"
    assert layers[-2:] == ["dienstweg", "audit"]
    assert (
        layers.index("privacy")
        < layers.index("messaging")
        < layers.index("applications")
        < layers.index("referrals")
    )


def test_the_trail_may_import_nothing_of_ours() -> None:
    forbidden = contract("forbidden")
    assert forbidden["source_modules"] == ["audit"]
    assert set(forbidden["forbidden_modules"]) == our_packages() - {"audit"}


def test_audit_tables_hold_no_foreign_keys() -> None:
    for model in (AuditEvent, AuditSeal):
        assert not [field.name for field in model._meta.get_fields() if field.is_relation]
