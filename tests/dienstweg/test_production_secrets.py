"""The rules for the five production secrets: what start-up refuses, and that a generated
set passes them. Start-up itself is tested in tests/config/test_settings.py."""

from __future__ import annotations

import base64
import re
import secrets
from pathlib import Path

import pytest

from dienstweg import production_secrets
from dienstweg.production_secrets import NAMES, RANDOM_TEXT, example_values, weaknesses

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = example_values(ROOT / production_secrets.EXAMPLE)


def key(size: int = 32) -> str:
    return base64.b64encode(secrets.token_bytes(size)).decode()


def strong() -> dict[str, str]:
    return {
        "DIENSTWEG_SECRET_KEY": secrets.token_urlsafe(64),
        "DIENSTWEG_BACKUP_CODE_KEY": secrets.token_urlsafe(64),
        "DIENSTWEG_MASTER_KEYS": f"1:{key()},2:{key()}",
        "DIENSTWEG_BLIND_INDEX_KEY": secrets.token_urlsafe(64),
        "DIENSTWEG_AUDIT_SIGNING_KEY": key(),
    }


def refused(name: str, value: str) -> list[str]:
    """The messages about NAME when it alone has VALUE."""
    given = {**strong(), name: value}
    return [weakness.message for weakness in weaknesses(given, examples=EXAMPLES)]


def test_strong_secrets_pass() -> None:
    assert weaknesses(strong(), examples=EXAMPLES) == []


def test_a_generated_set_passes_and_is_fresh_each_time() -> None:
    first, second = production_secrets.generate(), production_secrets.generate()
    assert set(first) == set(NAMES)
    assert weaknesses(first, examples=EXAMPLES) == []
    assert not set(first.values()) & set(second.values())


def test_env_file_has_a_line_per_secret() -> None:
    values = production_secrets.generate()
    lines = production_secrets.env_file(values).splitlines()
    assert lines == [f"{name}={values[name]}" for name in NAMES]


def test_example_file_has_a_placeholder_for_every_secret() -> None:
    # Guards the next test: every secret is read from the example file's own values.
    text = (ROOT / production_secrets.EXAMPLE).read_text()
    for name in NAMES:
        assert re.search(rf"^{name}=(1:)?change-me-", text, re.MULTILINE), name


@pytest.mark.parametrize("name", NAMES)
def test_every_placeholder_of_the_example_is_refused(name: str) -> None:
    placeholder = next(
        line.partition("=")[2]
        for line in (ROOT / production_secrets.EXAMPLE).read_text().splitlines()
        if line.startswith(f"{name}=")
    )
    assert refused(name, placeholder) == [
        f"{name} is a placeholder from deploy/dienstweg.env.example: "
        "each installation needs its own."
    ]


def test_any_value_of_the_example_is_refused_even_without_change_me() -> None:
    value = secrets.token_urlsafe(64)
    given = {**strong(), "DIENSTWEG_SECRET_KEY": value}
    assert [w.name for w in weaknesses(given, examples={value})] == ["DIENSTWEG_SECRET_KEY"]


def test_a_placeholder_is_refused_without_the_example_file() -> None:
    given = {**strong(), "DIENSTWEG_BLIND_INDEX_KEY": "Change-Me-" + secrets.token_urlsafe(64)}
    assert [w.name for w in weaknesses(given, examples=set())] == ["DIENSTWEG_BLIND_INDEX_KEY"]


@pytest.mark.parametrize("name", RANDOM_TEXT)
def test_text_secret_of_49_characters_is_refused(name: str) -> None:
    assert refused(name, secrets.token_urlsafe(64)[:49]) == [
        f"{name} has 49 characters; it needs 50 or more."
    ]


@pytest.mark.parametrize("name", RANDOM_TEXT)
@pytest.mark.parametrize("value", ["x" * 64, "0123456789" * 6, "abcdefghijklmnopqrs" * 3])
def test_text_secret_of_few_distinct_characters_is_refused(name: str, value: str) -> None:
    assert refused(name, value) == [
        f"{name} does not look random: fewer than 20 distinct characters."
    ]


@pytest.mark.parametrize(
    "value",
    [
        "1:" + key(16),  # too short
        "1:" + key(48),  # the vault's keys are exactly 32 bytes
        key(),  # no version
        "v1:" + key(),  # a version is a number
        "1:" + secrets.token_urlsafe(32),  # URL-safe characters are not the vault's base64
        f"1:{key()},2:nonsense",  # every entry counts
    ],
    # Named, not shown: the values are random, and parallel workers must collect the same ids.
    ids=["too short", "too long", "no version", "version not a number", "url-safe", "2nd entry"],
)
def test_master_keys_not_of_the_shape_are_refused(value: str) -> None:
    (message,) = refused("DIENSTWEG_MASTER_KEYS", value)
    assert message.startswith("DIENSTWEG_MASTER_KEYS: entry ")
    assert "'<version>:<base64 of 32 random bytes>'" in message


def test_master_key_of_repeated_bytes_is_refused() -> None:
    zeros = base64.b64encode(bytes(32)).decode()
    assert refused("DIENSTWEG_MASTER_KEYS", f"1:{key()},2:{zeros}") == [
        "DIENSTWEG_MASTER_KEYS: key 2 does not look random."
    ]


@pytest.mark.parametrize(
    "value",
    [key(16), secrets.token_hex(32)[:31] + "!", "kurz", "x" * 44],
    ids=["16 bytes", "not base64", "kurz", "repeated"],
)
def test_audit_key_not_base64_of_32_bytes_is_refused(value: str) -> None:
    assert refused("DIENSTWEG_AUDIT_SIGNING_KEY", value) in (
        ["DIENSTWEG_AUDIT_SIGNING_KEY is not the base64 of 32 or more random bytes."],
        ["DIENSTWEG_AUDIT_SIGNING_KEY does not look random."],
    )


@pytest.mark.parametrize(
    "value",
    [key(), key(48), base64.urlsafe_b64encode(secrets.token_bytes(32))],
    ids=["32 bytes", "48 bytes", "url-safe"],
)
def test_audit_key_in_either_base64_alphabet_is_accepted(value: str | bytes) -> None:
    text = value.decode().rstrip("=") if isinstance(value, bytes) else value
    assert refused("DIENSTWEG_AUDIT_SIGNING_KEY", text) == []


def test_same_value_for_two_secrets_is_refused_naming_both() -> None:
    given = strong()
    given["DIENSTWEG_BACKUP_CODE_KEY"] = given["DIENSTWEG_SECRET_KEY"]
    assert [tuple(w) for w in weaknesses(given, examples=EXAMPLES)] == [
        (
            "DIENSTWEG_BACKUP_CODE_KEY",
            "DIENSTWEG_BACKUP_CODE_KEY has the same value as DIENSTWEG_SECRET_KEY: "
            "each needs its own.",
        )
    ]


def test_messages_never_hold_the_value() -> None:
    values = {
        "DIENSTWEG_SECRET_KEY": "geheim-" * 3,
        "DIENSTWEG_BACKUP_CODE_KEY": "geheim-" * 10,
        "DIENSTWEG_MASTER_KEYS": "1:geheim-geheim",
        "DIENSTWEG_BLIND_INDEX_KEY": "geheim-" * 10,
        "DIENSTWEG_AUDIT_SIGNING_KEY": "geheim-geheim",
    }
    found = weaknesses(values, examples=EXAMPLES)
    assert {w.name for w in found} == set(NAMES)
    assert not any("geheim" in w.message for w in found)


def test_each_secret_has_its_own_check_id() -> None:
    assert sorted(production_secrets.CHECK_IDS.values()) == [
        f"dienstweg.E10{n}" for n in range(1, 6)
    ]
