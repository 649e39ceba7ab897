"""The house rules a reader relies on: modules small enough to read as one part of the system.

The import direction itself is enforced by `lint-imports` (contracts in pyproject.toml), which
`make lint` and so `make test` run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 600
MODULES = sorted(
    path.relative_to(ROOT).as_posix()
    for package in ("serve_app", "deployments")
    for path in (ROOT / package).rglob("*.py")
)


def test_there_are_modules_to_check():
    assert len(MODULES) > 30


@pytest.mark.parametrize("module", MODULES)
def test_no_module_is_longer_than_it_can_be_read(module: str):
    lines = len((ROOT / module).read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{module} has {lines} lines; split it by what it does"
