"""manage.py generate_secrets: a complete, fresh set in the env-file format. That it runs
before any secret exists is tested in tests/config/test_settings.py."""

from __future__ import annotations

import io
from pathlib import Path

from django.core.management import call_command

from dienstweg import production_secrets

ROOT = Path(__file__).resolve().parents[2]


def generate() -> dict[str, str]:
    out = io.StringIO()
    call_command("generate_secrets", stdout=out)
    lines = [line for line in out.getvalue().splitlines() if not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_prints_all_five_secrets_as_env_lines() -> None:
    assert list(generate()) == list(production_secrets.NAMES)


def test_printed_set_passes_the_start_up_rules() -> None:
    examples = production_secrets.example_values(ROOT / production_secrets.EXAMPLE)
    assert production_secrets.weaknesses(generate(), examples=examples) == []


def test_each_run_prints_new_values() -> None:
    assert not set(generate().values()) & set(generate().values())
