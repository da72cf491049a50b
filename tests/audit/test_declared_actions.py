"""Every audit action is declared once with its label (audit.registry), and the two lists
agree: a declared action that nothing records, or a recorded one nobody declared, fails."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from audit import registry

ROOT = Path(__file__).resolve().parents[2]
APPS = (
    "audit",
    "dienstweg",
    "referrals",
    "applications",
    "messaging",
    "conferences",
    "privacy",
    "config",
)
# The calls that record an event, with the position of their action argument.
RECORDING = {"record": 1, "record_dpo": 1, "record_refusal": 1}


def sources(app: str) -> list[Path]:
    return [
        path
        for path in sorted((ROOT / app).rglob("*.py"))
        if "migrations" not in path.parts and path.name != "audit_actions.py"
    ]


def names_used(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} | {
        node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
    }


def ours() -> list[registry.Declared]:
    return [item for item in registry.declared() if not item.declared_in.startswith("tests")]


def test_every_app_declares_what_it_records_and_labels_it_in_german() -> None:
    declared = ours()
    assert len(declared) > 60
    assert {item.declared_in.split(".")[0] for item in declared} == set(APPS) - {"config"}
    assert all(str(item.label) and str(item.label) != item.name for item in declared)


def test_every_declared_action_is_recorded_by_its_app() -> None:
    never = []
    for item in ours():
        app = item.declared_in.split(".")[0]
        module = importlib.import_module(item.declared_in)
        [constant] = [k for k, v in vars(module).items() if k.isupper() and v == item.name]
        if not any(constant in names_used(path) for path in sources(app)):
            never.append(item.name)
    assert not never, f"declared but never recorded: {never}"


def test_every_recorded_action_is_a_declared_constant() -> None:
    literal = []
    for app in APPS:
        for path in sources(app):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                position = RECORDING.get(name or "")
                if position is None or len(node.args) <= position:
                    continue
                action = node.args[position]
                if isinstance(action, ast.Constant | ast.JoinedStr):
                    literal.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not literal, f"actions written as text instead of a declared constant: {literal}"
