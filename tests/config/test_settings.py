"""Settings from the environment: production refuses to start without its secrets or with
weak ones, reads them from files, passes Django's deployment checks, lets the commands that
make secrets run before any exist, and every variable is documented."""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.hashers import get_hasher, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from config import settings as project_settings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_SOURCE = (ROOT / "config" / "settings.py").read_text()
ENV_EXAMPLE = ROOT / "deploy" / "dienstweg.env.example"

READ_CALL = re.compile(r"\b(?:env|env_bool|env_int|env_list|secret)\(\s*\"([A-Z][A-Z0-9_]*)\"")
SECRET_CALL = re.compile(r"\bsecret\(\s*\"([A-Z][A-Z0-9_]*)\"")
VARIABLES = sorted(set(READ_CALL.findall(SETTINGS_SOURCE)))
SECRETS = sorted(set(SECRET_CALL.findall(SETTINGS_SOURCE)))


def clean_environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """The test runner's environment without any of ours, plus the given variables."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("DIENSTWEG_") and name not in {"DATABASE_URL", "REDIS_URL"}
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DIENSTWEG_DATA_DIR=str(tmp_path / "data"),
        PYTHONPATH=str(ROOT),
    )
    environment.update(variables)
    return environment


def production_secret(name: str) -> str:
    if name == "DIENSTWEG_MASTER_KEYS":  # versioned 32-byte keys
        return "1:" + base64.b64encode(secrets.token_bytes(32)).decode()
    if name == "DIENSTWEG_AUDIT_SIGNING_KEY":  # a raw Ed25519 key
        return base64.b64encode(secrets.token_bytes(32)).decode()
    return secrets.token_urlsafe(64)


def production_secrets() -> dict[str, str]:
    return {name: production_secret(name) for name in SECRETS}


def run(arguments: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
        [sys.executable, *arguments],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_python(code: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run(["-c", code], environment)


SETUP = "import django; django.setup()"


def test_settings_read_the_secrets() -> None:
    # Guards the parsing below: if the grep found nothing, the other tests prove nothing.
    assert "DIENSTWEG_SECRET_KEY" in SECRETS
    assert {"DIENSTWEG_DEBUG", "DATABASE_URL", "REDIS_URL"} <= set(VARIABLES)


def test_missing_secret_key_stops_start_up_without_debug(tmp_path: Path) -> None:
    result = run_python(SETUP, clean_environment(tmp_path, DIENSTWEG_DEBUG="false"))
    assert result.returncode != 0
    assert "DIENSTWEG_SECRET_KEY" in result.stderr
    assert "ImproperlyConfigured" in result.stderr


@pytest.mark.parametrize("missing", SECRETS)
def test_each_missing_secret_stops_start_up_and_is_named(tmp_path: Path, missing: str) -> None:
    given = production_secrets()
    del given[missing]
    environment = clean_environment(tmp_path, DIENSTWEG_DEBUG="false", **given)
    result = run_python(SETUP, environment)
    assert result.returncode != 0
    assert f"{missing} (or {missing}_FILE) is not set" in result.stderr


def test_production_starts_with_all_secrets(tmp_path: Path) -> None:
    environment = clean_environment(tmp_path, DIENSTWEG_DEBUG="false", **production_secrets())
    result = run_python(SETUP, environment)
    assert result.returncode == 0, result.stderr


def test_debug_generates_development_secrets_in_the_data_dir(tmp_path: Path) -> None:
    code = f"{SETUP}; from django.conf import settings; print(settings.SECRET_KEY)"
    first = run_python(code, clean_environment(tmp_path, DIENSTWEG_DEBUG="true"))
    second = run_python(code, clean_environment(tmp_path, DIENSTWEG_DEBUG="true"))
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout  # kept, not regenerated at every start
    assert (tmp_path / "data" / "dev-secrets" / "DIENSTWEG_SECRET_KEY").exists()


def test_secrets_are_read_from_files(tmp_path: Path) -> None:
    files = {}
    for name, value in production_secrets().items():
        path = tmp_path / name.lower()
        path.write_text(f"{value}\n")  # as `echo` writes it: the newline is not part of it
        files[f"{name}_FILE"] = str(path)
    code = (
        f"{SETUP}; from django.conf import settings; "
        "print(settings.SECRET_KEY); print(settings.BACKUP_CODE_KEY)"
    )
    result = run_python(code, clean_environment(tmp_path, DIENSTWEG_DEBUG="false", **files))
    assert result.returncode == 0, result.stderr
    secret_key, backup_code_key = result.stdout.splitlines()
    assert secret_key == Path(files["DIENSTWEG_SECRET_KEY_FILE"]).read_text().strip()
    assert backup_code_key == Path(files["DIENSTWEG_BACKUP_CODE_KEY_FILE"]).read_text().strip()


def test_unreadable_secret_file_stops_start_up_and_names_it(tmp_path: Path) -> None:
    given = production_secrets()
    del given["DIENSTWEG_SECRET_KEY"]
    missing_file = tmp_path / "no-such-file"
    environment = clean_environment(
        tmp_path,
        DIENSTWEG_DEBUG="false",
        DIENSTWEG_SECRET_KEY_FILE=str(missing_file),
        **given,
    )
    result = run_python(SETUP, environment)
    assert result.returncode != 0
    assert f"DIENSTWEG_SECRET_KEY_FILE={missing_file} cannot be read" in result.stderr


def test_production_settings_pass_the_deployment_checks(tmp_path: Path) -> None:
    environment = clean_environment(
        tmp_path,
        DIENSTWEG_DEBUG="false",
        DIENSTWEG_ALLOWED_HOSTS="dienstweg.example.org",
        **production_secrets(),
    )
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], environment)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr
    assert "dienstweg.E10" not in result.stderr


def test_argon2_is_the_first_password_hasher(settings) -> None:
    hashers = project_settings.PASSWORD_HASHERS
    assert hashers[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    # The test suite swaps in a fast hasher; use the project's list to prove argon2 works.
    settings.PASSWORD_HASHERS = hashers
    assert get_hasher("default").algorithm == "argon2"
    assert make_password("richtig-langes-Passwort-42").startswith("argon2$")


def test_password_shorter_than_12_characters_is_refused() -> None:
    with pytest.raises(ValidationError) as refused:
        validate_password("kY7#qp2!Zw9")  # 11 characters, neither common nor numeric
    assert "password_too_short" in {error.code for error in refused.value.error_list}


def test_password_of_12_characters_is_accepted() -> None:
    validate_password("kY7#qp2!Zw9m")


def test_every_environment_variable_is_in_the_env_example() -> None:
    assert ENV_EXAMPLE.exists(), f"{ENV_EXAMPLE.relative_to(ROOT)} is missing"
    documented = set(
        re.findall(r"^\s*#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE)
    )
    missing = [name for name in VARIABLES if name not in documented]
    assert not missing, f"not in {ENV_EXAMPLE.name}: {', '.join(missing)}"


def test_malformed_master_key_stops_start_up_without_echoing_it(tmp_path: Path) -> None:
    given = production_secrets()
    given["DIENSTWEG_MASTER_KEYS"] = "geheimer-wert-ohne-version"
    environment = clean_environment(tmp_path, DIENSTWEG_DEBUG="false", **given)
    result = run_python(SETUP, environment)
    assert result.returncode != 0
    assert "DIENSTWEG_MASTER_KEYS: entry 1" in result.stderr
    assert "geheimer-wert" not in result.stderr


def example_value(name: str) -> str:
    """NAME's placeholder as deploy/dienstweg.env.example assigns it."""
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.partition("=")[2]
    raise AssertionError(f"{name} has no value in {ENV_EXAMPLE.name}")


def weak_secrets(good: dict[str, str]) -> dict[str, str]:
    """Each of the five weak in its own way; the master key still parses, so that settings
    with DEBUG on reach `check --deploy`."""
    return {
        "DIENSTWEG_SECRET_KEY": example_value("DIENSTWEG_SECRET_KEY"),
        "DIENSTWEG_BACKUP_CODE_KEY": "Geheimnis" * 6,  # 54 characters, 8 distinct
        "DIENSTWEG_MASTER_KEYS": "1:" + base64.b64encode(bytes(32)).decode(),
        "DIENSTWEG_BLIND_INDEX_KEY": good["DIENSTWEG_SECRET_KEY"],
        "DIENSTWEG_AUDIT_SIGNING_KEY": base64.b64encode(secrets.token_bytes(16)).decode(),
    }


WEAKNESS = {
    "DIENSTWEG_SECRET_KEY": "DIENSTWEG_SECRET_KEY is a placeholder from "
    "deploy/dienstweg.env.example",
    "DIENSTWEG_BACKUP_CODE_KEY": "DIENSTWEG_BACKUP_CODE_KEY does not look random",
    "DIENSTWEG_MASTER_KEYS": "DIENSTWEG_MASTER_KEYS: key 1 does not look random",
    "DIENSTWEG_BLIND_INDEX_KEY": "DIENSTWEG_BLIND_INDEX_KEY has the same value as "
    "DIENSTWEG_SECRET_KEY",
    "DIENSTWEG_AUDIT_SIGNING_KEY": "DIENSTWEG_AUDIT_SIGNING_KEY is not the base64 of 32 or "
    "more random bytes",
}


@pytest.mark.parametrize("weak", SECRETS)
def test_weak_secret_stops_start_up_naming_it_not_its_value(tmp_path: Path, weak: str) -> None:
    given = production_secrets()
    value = weak_secrets(given)[weak]
    given[weak] = value
    result = run_python(SETUP, clean_environment(tmp_path, DIENSTWEG_DEBUG="false", **given))
    assert result.returncode != 0
    assert "ImproperlyConfigured: Production refuses weak secrets" in result.stderr
    assert WEAKNESS[weak] in result.stderr
    assert value.removeprefix("1:") not in result.stderr


def test_weak_secret_in_a_file_stops_start_up(tmp_path: Path) -> None:
    given = production_secrets()
    path = tmp_path / "secret_key"
    path.write_text("x" * 64 + "\n")
    del given["DIENSTWEG_SECRET_KEY"]
    environment = clean_environment(
        tmp_path, DIENSTWEG_DEBUG="false", DIENSTWEG_SECRET_KEY_FILE=str(path), **given
    )
    result = run_python(SETUP, environment)
    assert result.returncode != 0
    assert "DIENSTWEG_SECRET_KEY does not look random" in result.stderr


def test_weak_secrets_are_reported_by_check_deploy_under_their_own_ids(tmp_path: Path) -> None:
    # With DEBUG on, settings start; the deployment checks name every weak secret. All five
    # are weak here, so the blind-index key repeats another weak one.
    weak = weak_secrets(production_secrets())
    weak["DIENSTWEG_BLIND_INDEX_KEY"] = weak["DIENSTWEG_BACKUP_CODE_KEY"]
    environment = clean_environment(tmp_path, DIENSTWEG_DEBUG="true", **weak)
    result = run(["manage.py", "check", "--deploy"], environment)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    expected = {
        **WEAKNESS,
        "DIENSTWEG_BLIND_INDEX_KEY": "DIENSTWEG_BLIND_INDEX_KEY has the same value as "
        "DIENSTWEG_BACKUP_CODE_KEY",
    }
    for check_id, name in [
        ("dienstweg.E101", "DIENSTWEG_SECRET_KEY"),
        ("dienstweg.E102", "DIENSTWEG_BACKUP_CODE_KEY"),
        ("dienstweg.E103", "DIENSTWEG_MASTER_KEYS"),
        ("dienstweg.E104", "DIENSTWEG_BLIND_INDEX_KEY"),
        ("dienstweg.E105", "DIENSTWEG_AUDIT_SIGNING_KEY"),
    ]:
        assert f"({check_id}) {expected[name]}" in output
    assert "HINT: `manage.py generate_secrets` prints a fresh set" in output
    for value in weak.values():
        assert value.removeprefix("1:") not in output


def test_env_example_sources_in_a_posix_shell() -> None:
    script = 'set -e; set -a; . ./deploy/dienstweg.env.example; echo "$DIENSTWEG_FROM_EMAIL"'
    result = subprocess.run(  # noqa: S603 (a fixed script)
        ["sh", "-c", script],  # noqa: S607 (the system's POSIX shell, as an operator's)
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == "Dienstweg <noreply@example.org>\n"


def test_env_example_as_it_is_stops_start_up_naming_every_placeholder(tmp_path: Path) -> None:
    # What an operator gets who copies the example and forgets the secrets.
    script = 'set -a; . ./deploy/dienstweg.env.example; DIENSTWEG_DATA_DIR="$0"; exec "$1" -c "$2"'
    result = run_shell(script, [str(tmp_path / "data"), sys.executable, SETUP], tmp_path)
    assert result.returncode != 0
    for name in SECRETS:
        assert f"{name} is a placeholder from deploy/dienstweg.env.example" in result.stderr
    assert "change-me" not in result.stderr


def run_shell(
    script: str, arguments: list[str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (fixed script)
        ["sh", "-c", script, *arguments],  # noqa: S607 (the system's POSIX shell)
        env=clean_environment(tmp_path),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_generate_secrets_runs_without_secrets_and_its_set_passes_the_checks(
    tmp_path: Path,
) -> None:
    generated = run(
        ["manage.py", "generate_secrets"], clean_environment(tmp_path, DIENSTWEG_DEBUG="false")
    )
    assert generated.returncode == 0, generated.stderr
    lines = [line for line in generated.stdout.splitlines() if not line.startswith("#")]
    assert sorted(line.partition("=")[0] for line in lines) == SECRETS
    env_file = tmp_path / "secrets.env"
    env_file.write_text(generated.stdout)
    # Read through the shell, as an env file is: the values need no quoting.
    script = (
        'set -e; set -a; . "$0"; DIENSTWEG_DEBUG=false; '
        'DIENSTWEG_ALLOWED_HOSTS=dienstweg.example.org; exec "$1" manage.py check --deploy '
        "--fail-level WARNING"
    )
    result = run_shell(script, [str(env_file), sys.executable], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_generate_secrets_prints_a_fresh_set_each_time(tmp_path: Path) -> None:
    environment = clean_environment(tmp_path, DIENSTWEG_DEBUG="false")
    first = run(["manage.py", "generate_secrets"], environment).stdout.splitlines()
    second = run(["manage.py", "generate_secrets"], environment).stdout.splitlines()
    assert len(first) == 6  # a comment and five secrets
    assert not set(first[1:]) & set(second[1:])


def test_audit_public_key_generate_runs_before_any_secret_exists(tmp_path: Path) -> None:
    result = run(
        ["manage.py", "audit_public_key", "--generate"],
        clean_environment(tmp_path, DIENSTWEG_DEBUG="false"),
    )
    assert result.returncode == 0, result.stderr
    name, _sep, key = result.stdout.splitlines()[0].partition("=")
    assert name == "DIENSTWEG_AUDIT_SIGNING_KEY"
    # The printed key is one production accepts.
    given = {**production_secrets(), name: key}
    started = run_python(SETUP, clean_environment(tmp_path, DIENSTWEG_DEBUG="false", **given))
    assert started.returncode == 0, started.stderr


def test_makemigrations_check_runs_without_secrets(tmp_path: Path) -> None:
    """A fresh checkout asks whether a model change lacks its migration without any
    production secret (it compares models and migrations, and reads no secret)."""
    result = run(
        ["manage.py", "makemigrations", "--check", "--dry-run"],
        clean_environment(tmp_path, DIENSTWEG_DEBUG="false"),
    )
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


@pytest.mark.parametrize(
    "command", [["check"], ["audit_public_key"], ["migrate", "--check"], ["generate_secret"]]
)
def test_other_commands_still_need_every_secret(tmp_path: Path, command: list[str]) -> None:
    result = run(["manage.py", *command], clean_environment(tmp_path, DIENSTWEG_DEBUG="false"))
    assert result.returncode != 0
    assert "DIENSTWEG_SECRET_KEY (or DIENSTWEG_SECRET_KEY_FILE) is not set" in result.stderr
