"""Shared test helpers: when CI sets LABSHIP_REQUIRE_ALL=1, a missing tool fails instead of skipping."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REQUIRE_ALL = os.environ.get("LABSHIP_REQUIRE_ALL") == "1"


def require(ok: bool, reason: str) -> None:
    """Skip the test when `ok` is false, or fail it when LABSHIP_REQUIRE_ALL=1 (CI has every part)."""
    if ok:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required by LABSHIP_REQUIRE_ALL=1 but missing: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def committed_experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed experiment with raw CSV tracked and compressed, built once per test run. Its DVC
    remote is `../remote`, so each copy (and clone) uses the remote next to it."""
    from tests.data_servers import make_experiment

    return make_experiment(tmp_path_factory.mktemp("data") / "exp", "../remote")


@pytest.fixture
def experiment(committed_experiment: Path, tmp_path: Path) -> Path:
    """A private copy of `committed_experiment` for one test."""
    copy = tmp_path / "exp"
    shutil.copytree(committed_experiment, copy, symlinks=True)
    return copy
