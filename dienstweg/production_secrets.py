"""The five production secrets: how to make a fresh set and which values start-up refuses.

Standard library only: config/settings.py imports it before Django is set up. Messages name
the variable and the rule, never the value.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping
from itertools import combinations
from pathlib import Path
from typing import NamedTuple

# Each secret with the id under which `manage.py check --deploy` reports it.
CHECK_IDS = {
    "DIENSTWEG_SECRET_KEY": "dienstweg.E101",
    "DIENSTWEG_BACKUP_CODE_KEY": "dienstweg.E102",
    "DIENSTWEG_MASTER_KEYS": "dienstweg.E103",
    "DIENSTWEG_BLIND_INDEX_KEY": "dienstweg.E104",
    "DIENSTWEG_AUDIT_SIGNING_KEY": "dienstweg.E105",
}
NAMES = tuple(CHECK_IDS)
# "50+ random characters"
RANDOM_TEXT = ("DIENSTWEG_SECRET_KEY", "DIENSTWEG_BACKUP_CODE_KEY", "DIENSTWEG_BLIND_INDEX_KEY")
MIN_CHARACTERS = 50
# 64 random URL-safe characters show about 40 distinct ones; fewer than 20 is no accident.
MIN_DISTINCT_CHARACTERS = 20
# "base64 of 32 random bytes"
KEY_BYTES = 32
# 32 random bytes hold about 30 distinct values; fewer than 16 is no accident either.
MIN_DISTINCT_BYTES = 16
# The placeholders of deploy/dienstweg.env.example, also when the file is not at hand.
PLACEHOLDER = "change-me"
EXAMPLE = "deploy/dienstweg.env.example"

ASSIGNMENT = re.compile(r"^\s*#?\s*[A-Z][A-Z0-9_]*=(.*)$", re.MULTILINE)


class Weakness(NamedTuple):
    name: str
    message: str


def generate() -> dict[str, str]:
    """A fresh, complete set of the five secrets, each from the system's random source."""

    def key() -> str:
        return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()

    return {
        "DIENSTWEG_SECRET_KEY": secrets.token_urlsafe(64),
        "DIENSTWEG_BACKUP_CODE_KEY": secrets.token_urlsafe(64),
        "DIENSTWEG_MASTER_KEYS": f"1:{key()}",
        "DIENSTWEG_BLIND_INDEX_KEY": secrets.token_urlsafe(64),
        "DIENSTWEG_AUDIT_SIGNING_KEY": key(),
    }


def env_file(values: Mapping[str, str]) -> str:
    """VALUES as `NAME=value` lines, for a shell, systemd's EnvironmentFile or docker."""
    # The generated values (URL-safe or standard base64) need no quoting anywhere.
    lines = [f"{name}={values[name]}" for name in NAMES]
    return "\n".join(lines) + "\n"


def example_values(path: Path) -> set[str]:
    """Every value assigned in the example env file, commented out or not."""
    try:
        text = path.read_text()
    except OSError:
        return set()
    values = {value.strip().strip("\"'") for value in ASSIGNMENT.findall(text)}
    return {value for value in values if value}


def _decoded(text: str) -> bytes | None:
    """TEXT as base64 (standard or URL-safe, padding optional), else None."""
    padded = text + "=" * (-len(text) % 4)
    for altchars in (b"+/", b"-_"):
        try:
            return base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
    return None


def _master_keys(value: str) -> list[tuple[str, str]]:
    """The `version:base64` entries of DIENSTWEG_MASTER_KEYS, split but not checked."""
    entries = []
    for item in value.split(","):
        version, _sep, encoded = item.strip().partition(":")
        entries.append((version, encoded))
    return entries


def _copied(name: str, value: str, examples: set[str]) -> bool:
    parts = {value}
    if name == "DIENSTWEG_MASTER_KEYS":
        for version, encoded in _master_keys(value):
            parts |= {f"{version}:{encoded}", encoded}
    return any(part in examples or PLACEHOLDER in part.lower() for part in parts)


def _shape(name: str, value: str) -> str | None:
    """What is wrong with VALUE's shape, in words without the value; None if nothing."""
    if name in RANDOM_TEXT:
        if len(value) < MIN_CHARACTERS:
            return f"{name} has {len(value)} characters; it needs {MIN_CHARACTERS} or more."
        if len(set(value)) < MIN_DISTINCT_CHARACTERS:
            return (
                f"{name} does not look random: fewer than {MIN_DISTINCT_CHARACTERS} "
                "distinct characters."
            )
        return None
    if name == "DIENSTWEG_MASTER_KEYS":
        for position, (version, encoded) in enumerate(_master_keys(value), start=1):
            # Strict base64 and exactly 32 bytes: the vault's AES-256 keys (parse_master_keys).
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                key = b""
            if not version.isdigit() or len(key) != KEY_BYTES:
                return (
                    f"{name}: entry {position} is not "
                    f"'<version>:<base64 of {KEY_BYTES} random bytes>'."
                )
            if len(set(key)) < MIN_DISTINCT_BYTES:
                return f"{name}: key {version} does not look random."
        return None
    # DIENSTWEG_AUDIT_SIGNING_KEY
    key = _decoded(value.strip()) or b""
    if len(key) < KEY_BYTES:
        return f"{name} is not the base64 of {KEY_BYTES} or more random bytes."
    if len(set(key)) < MIN_DISTINCT_BYTES:
        return f"{name} does not look random."
    return None


def weaknesses(values: Mapping[str, str], *, examples: set[str]) -> list[Weakness]:
    """What start-up refuses in VALUES (the secrets that are set): values from the example
    file, values not of the documented shape, and one value used for two secrets."""
    found = []
    for name in NAMES:
        value = values.get(name)
        if not value:
            continue
        if _copied(name, value, examples):
            found.append(
                Weakness(
                    name,
                    f"{name} is a placeholder from {EXAMPLE}: each installation needs its own.",
                )
            )
            continue
        problem = _shape(name, value)
        if problem:
            found.append(Weakness(name, problem))
    for first, second in combinations(NAMES, 2):
        if values.get(first) and values.get(first) == values.get(second):
            found.append(
                Weakness(second, f"{second} has the same value as {first}: each needs its own.")
            )
    return found
