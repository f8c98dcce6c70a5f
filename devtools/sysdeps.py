"""System packages the demo and the test suite need, installed with apt when we may.

A fresh Debian/Ubuntu host of our CI's kind lacks them all; apt installs each in seconds. As root
with apt-get, `ensure_packages` installs what is missing and says so; otherwise it returns the
exact command that would, so the caller can stop with it (demo) or warn and let the tests that
need the part skip (test).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

# command (or file) that proves the part is there -> the Debian package that brings it
PACKAGES = {
    "git": "git",  # every scaffold is a git repository
    "debootstrap": "debootstrap",  # the stand-in base image (no registry reachable)
    "docker-registry": "docker-registry",  # the local registry of the image push/pull tests
    "/usr/sbin/sshd": "openssh-server",  # the SSH DVC remote tests
    "chromium": "chromium",  # the browser test (Playwright drives Debian's Chromium)
}


def present(probe: str) -> bool:
    return Path(probe).exists() if probe.startswith("/") else shutil.which(probe) is not None


def missing_packages(probes: Iterable[str] | None = None) -> list[str]:
    """The Debian packages of `probes` (default: all of PACKAGES) whose command is not there, in order."""
    return [PACKAGES[probe] for probe in (PACKAGES if probes is None else probes) if not present(probe)]


def install_command(packages: list[str]) -> str:
    prefix = "" if os.geteuid() == 0 else "sudo "
    return f"{prefix}apt-get install -y {' '.join(packages)}"


def can_install() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def ensure_packages(probes: Iterable[str] | None = None, *, log: Callable[[str], None] = print) -> str:
    """Install the missing packages of `probes` (root with apt); return "" when all are there, else
    the command that installs the rest."""
    missing = missing_packages(probes)
    if not missing:
        return ""
    if not can_install():
        return install_command(missing)
    log(f"installing missing system packages with apt: {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], env=env, check=False)
    result = subprocess.run(
        # with recommends: Chromium was verified that way (notes/browser.md), fonts included
        ["apt-get", "install", "-y", "-q", *missing],
        env=env,
        check=False,
    )
    still = missing_packages(probes)
    if result.returncode != 0 or still:
        return install_command(still or missing)
    return ""
