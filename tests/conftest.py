"""Shared test helpers: when CI sets LABSHIP_REQUIRE_ALL=1, a missing tool fails instead of skipping."""

from __future__ import annotations

import os

import pytest

REQUIRE_ALL = os.environ.get("LABSHIP_REQUIRE_ALL") == "1"


def require(ok: bool, reason: str) -> None:
    """Skip the test when `ok` is false, or fail it when LABSHIP_REQUIRE_ALL=1 (CI has every part)."""
    if ok:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required by LABSHIP_REQUIRE_ALL=1 but missing: {reason}")
    pytest.skip(reason)
