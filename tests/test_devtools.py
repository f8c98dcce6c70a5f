"""The dev tooling's system-package step: what is missing, and the exact command when it may not install."""

from __future__ import annotations

import pytest

from devtools import sysdeps


def test_missing_packages_name_the_debian_package_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sysdeps, "PACKAGES", {"/nonexistent/labship-probe": "labship-pkg", "sh": "dash"})
    assert sysdeps.missing_packages() == ["labship-pkg"]
    monkeypatch.setattr(sysdeps.os, "geteuid", lambda: 1000)  # not root: nothing is installed
    assert sysdeps.ensure_packages() == "sudo apt-get install -y labship-pkg"
    monkeypatch.setattr(sysdeps, "PACKAGES", {"sh": "dash"})
    assert sysdeps.ensure_packages() == ""
