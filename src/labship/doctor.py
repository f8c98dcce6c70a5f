"""Preflight (`invoke doctor`): can this machine build, launch and share the experiment?

Each check probes one real thing, read-only, and returns a `Check`: ok, warn or FAIL, what it found,
and for anything not ok the step that fixes it. The checks run in the order a first hour needs them:
engine, compose, builder, base image, disk, git identity, then (inside an experiment) the lock file
and the DVC remote, and last the notebook port. A check that needs the engine says "skip" when the
engine does not answer, rather than failing a second time for the same cause.

Nothing is changed: the engine is asked for its version, the base image is inspected (or its
manifest asked for through the engine, never pulled), the lock tool runs in check mode, the DVC remote
is compared with the cache (`dvc status --cloud`, a listing), the port is bound and released.

Exit status: 0 when no check failed ("ready"); otherwise the exit code of the first failed check in
table order (`labship.errors`: 3 engine or remote unreachable, 4 credentials refused, 2 configuration
such as a stale lock file, 1 anything else). A warning (the preferred notebook port is taken: the
notebook then uses another one) keeps the exit status 0 unless `strict`.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from labship.config import ConfigError, LabshipConfig, find_root, load_config
from labship.errors import EXIT_CONFIG, EXIT_CREDENTIALS, EXIT_FAILED, EXIT_UNREACHABLE, LabshipError
from labship.report import TABLE_WIDTH, format_bytes

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
# A docker-stacks base is ~1.5 GB unpacked, each variant adds 0.3-0.5 GB, and BuildKit's cache
# reached 4.6 GB after a few dozen builds (notes/docker.md): below 5 GB a build can run out of space.
MIN_FREE_BYTES = 5_000_000_000
# `docker info` answers in ~0.4 s, also when it fails; a registry behind a slow proxy takes seconds.
PROBE_TIMEOUT_SECONDS = 20.0
# uv 0.13 / Poetry 2 when no interpreter satisfies requires-python (they cannot resolve without one)
_NO_PYTHON = re.compile(
    r"No interpreter found|incompatible with the project's Python|unable to find a compatible"
)
NAME_WIDTH = 14
STATUS_WIDTH = 5


@dataclass(frozen=True)
class Check:
    """The outcome of one check: status, what was found, and (when not ok) what to do."""

    name: str
    status: str
    found: str
    fix: str = ""
    exit_code: int = EXIT_FAILED

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def _run(command: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a probe; a missing program or a hang becomes a failed result, never an exception."""
    try:
        return subprocess.run(
            list(command), cwd=cwd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_SECONDS, check=False
        )
    except FileNotFoundError:
        return subprocess.CompletedProcess(list(command), 127, "", f"{command[0]}: command not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(
            list(command), 124, "", f"no answer within {PROBE_TIMEOUT_SECONDS:.0f} s"
        )


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {result.returncode}"


# --- the checks ----------------------------------------------------------------------------------
def check_engine() -> Check:
    """The Docker engine answers, and its version."""
    if shutil.which("docker") is None:
        return Check(
            "docker engine",
            FAIL,
            "no `docker` command on PATH",
            "install Docker: https://docs.docker.com/engine/install/",
            EXIT_UNREACHABLE,
        )
    result = _run(["docker", "version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})"])
    host = os.environ.get("DOCKER_HOST", "the default socket")
    if result.returncode != 0 or not result.stdout.strip():
        return Check(
            "docker engine",
            FAIL,
            f"no answer at {host}: {_last_line(result)}",
            "start the engine (`sudo systemctl start docker`, or `sudo dockerd &`), or point DOCKER_HOST "
            "at a running one",
            EXIT_UNREACHABLE,
        )
    return Check("docker engine", OK, f"{result.stdout.strip()} at {host}")


def compose_version() -> tuple[str | None, str, str]:
    """(version, how it was found, fix) of a compose v2; version None when there is none.

    Asks `labship.compose` (plugin, standalone binary, or the pinned binary labship brings) where it
    is installed; until that module is merged in, the `docker compose` CLI plugin only.
    """
    fix = "install the compose v2 plugin: https://docs.docker.com/compose/install/linux/ (the v1 "
    fix += "`docker-compose` 1.x is not enough)"
    try:
        from labship import compose  # type: ignore[attr-defined]
    except ImportError:
        argv = ["docker", "compose"]
    else:
        fix = getattr(compose, "INSTALL_HINT", fix)
        try:
            argv = list(compose.find_compose())
        except LabshipError as error:
            return None, str(error).splitlines()[0], fix
    result = _run([*argv, "version", "--short"])
    version = result.stdout.strip().removeprefix("v")
    if result.returncode == 0 and version[:1].isdigit() and int(version.split(".")[0]) >= 2:
        return version, " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv)), fix
    return None, _last_line(result), fix


def check_compose() -> Check:
    version, how, fix = compose_version()
    if version is None:
        return Check("compose v2", FAIL, f"no compose v2 found ({how})", fix)
    return Check("compose v2", OK, f"{version} ({how})")


def check_builder() -> Check:
    """BuildKit or the legacy builder (both build the template's Dockerfile)."""
    from labship import images

    try:
        builder = images.detect_builder()
    except images.ImageError as error:
        return Check("image builder", FAIL, str(error), "install Docker with buildx, or set LABSHIP_BUILDER")
    if builder.buildkit:
        return Check("image builder", OK, f"BuildKit ({builder.client})")
    return Check(
        "image builder",
        OK,
        f"legacy builder ({builder.client}; no buildx): works, 1.5-2x slower than BuildKit",
    )


def base_image(config: LabshipConfig) -> str:
    """The base image `invoke build` uses: LABSHIP_BASE_IMAGE, else [tool.labship] base-image."""
    return os.environ.get("LABSHIP_BASE_IMAGE") or config.base_image


def check_base_image(config: LabshipConfig) -> Check:
    """The base image is present, or the registry would serve it (manifest only, nothing pulled)."""
    image = base_image(config)
    if not image:
        return Check(
            "base image",
            FAIL,
            f"{config.pyproject}: [tool.labship] base-image is not set",
            'set base-image = "quay.io/jupyter/minimal-notebook:<tag>" in [tool.labship]',
            EXIT_CONFIG,
        )
    present = _run(["docker", "image", "inspect", "--format", "{{.Size}}", image])
    if present.returncode == 0:
        return Check("base image", OK, f"{image} present ({format_bytes(int(present.stdout.strip()))})")
    reason = _registry_answer(image)
    if reason is None:
        return Check("base image", OK, f"{image} not present; the registry serves it (pulled on build)")
    return Check(
        "base image",
        FAIL,
        f"{image} is not present and cannot be pulled: {reason}",
        "check the network and `docker login` to its registry, or `docker load` / build the image and "
        "set LABSHIP_BASE_IMAGE (or `invoke build --base-image IMAGE`)",
        EXIT_UNREACHABLE,
    )


def _registry_answer(image: str) -> str | None:
    """None when the engine can read the image's manifest from its registry, else why not."""
    import docker

    try:
        client = docker.from_env(timeout=int(PROBE_TIMEOUT_SECONDS))
        client.images.get_registry_data(image)
    except docker.errors.APIError as error:  # the engine's own words, without the HTTP wrapping
        return str(error.explanation or error).strip()[:300]
    except Exception as error:  # docker.errors.*, requests' connection errors: all mean "cannot"
        return str(error).strip().splitlines()[-1][:300] if str(error).strip() else type(error).__name__
    return None


def check_disk(root: Path) -> Check:
    """Free space where the experiment lives and, for a local engine, where Docker stores images."""
    places = {"experiment": root}
    docker_root = _run(["docker", "info", "--format", "{{.DockerRootDir}}"]).stdout.strip()
    if docker_root and Path(docker_root).is_dir() and _local_engine():
        places["docker"] = Path(docker_root)
    free = {label: shutil.disk_usage(path).free for label, path in places.items()}
    found = ", ".join(f"{label} {format_bytes(size)} free" for label, size in free.items())
    short = [label for label, size in free.items() if size < MIN_FREE_BYTES]
    if short:
        return Check(
            "free disk",
            FAIL,
            f"{found} (needs {format_bytes(MIN_FREE_BYTES)})",
            "free space on " + " and ".join(str(places[label]) for label in short) + ": e.g. "
            "`docker image prune`, `docker builder prune` (on a machine you do not share), `dvc gc`",
        )
    return Check("free disk", OK, found)


def _local_engine() -> bool:
    host = os.environ.get("DOCKER_HOST", "")
    return not host or host.startswith("unix://")


def check_git_identity(root: Path) -> Check:
    """git knows who commits (dvc.lock and *.dvc must be committed after compress and push)."""
    values = {}
    for key, variable in (("user.name", "GIT_AUTHOR_NAME"), ("user.email", "GIT_AUTHOR_EMAIL")):
        values[key] = (
            os.environ.get(variable) or _run(["git", "config", "--get", key], cwd=root).stdout.strip()
        )
    missing = [key for key, value in values.items() if not value]
    if missing:
        return Check(
            "git identity",
            FAIL,
            f"git has no {' and no '.join(missing)}",
            'git config --global user.name "Your Name" && git config --global user.email you@example.org',
            EXIT_CONFIG,
        )
    return Check("git identity", OK, f"{values['user.name']} <{values['user.email']}>")


def check_lock(config: LabshipConfig) -> Check:
    """The lock file exists and matches pyproject.toml (the images are built from it)."""
    from labship import images

    manager = config.package_manager
    lock = images.LOCK_FILES[manager]
    fix = f"run `{images.LOCK_COMMANDS[manager]}` and commit {lock}"
    if not (config.root / lock).is_file():
        return Check("lock file", FAIL, f"{lock} is missing", fix, EXIT_CONFIG)
    tool = _tool(manager)
    if tool is None:
        return Check("lock file", FAIL, f"{manager} is not installed", f"install {manager}, then {fix}")
    args = ["lock", "--check"] if manager == "uv" else ["check", "--lock"]
    result = _run([tool, *args], cwd=config.root)
    if result.returncode == 0:
        return Check("lock file", OK, f"{lock} matches pyproject.toml")
    if _NO_PYTHON.search(result.stdout + result.stderr):
        return Check(
            "lock file",
            FAIL,
            f"cannot check {lock}: {manager} needs a Python matching requires-python and finds none",
            f"install it (`{manager} python install X.Y`, X.Y from requires-python), then check again",
        )
    return Check(
        "lock file", FAIL, f"{lock} does not match pyproject.toml ({_last_line(result)})", fix, EXIT_CONFIG
    )


def _tool(name: str) -> str | None:
    """A program next to this Python (labship's tool environment), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def check_remote(config: LabshipConfig) -> Check:
    """The default DVC remote answers and accepts the credentials (read-only: status / listing)."""
    from labship import data

    try:
        remote = data.read_remotes(config.root).pick()
    except data.DataError as error:
        return Check("dvc remote", FAIL, str(error), "see `invoke data.remote --help`", error.exit_code)
    if remote.kind == "local":
        return _local_remote(remote.describe(), Path(remote.location))
    try:
        data.cloud_status(config.root, remote=remote.name)
    except data.DataError as error:
        fixes = {
            EXIT_UNREACHABLE: "check that the server is up and the URL right: `invoke data.remote`",
            EXIT_CREDENTIALS: "set the credentials: `invoke data.remote --url URL --access-key-id ID "
            "--secret-access-key KEY` (S3) or `--keyfile PATH` (SSH)",
        }
        first_sentence = str(error).split(". ")[0].removeprefix("cannot compare with the remote: ")
        return Check(
            "dvc remote",
            FAIL,
            first_sentence,
            fixes.get(error.exit_code, "see `invoke data.status`"),
            error.exit_code,
        )
    return Check("dvc remote", OK, f"{remote.describe()} answers, credentials accepted")


def _local_remote(described: str, directory: Path) -> Check:
    """A directory remote: there, or creatable by the first push (its parent exists and is writable)."""
    if directory.is_dir():
        if os.access(directory, os.W_OK | os.X_OK):
            return Check("dvc remote", OK, f"{described} is a writable directory")
        return Check(
            "dvc remote",
            FAIL,
            f"{described} is not writable by you",
            f"fix its permissions, e.g. `sudo chown -R $(id -u) {directory}`",
            EXIT_CREDENTIALS,
        )
    parent = next((p for p in directory.parents if p.exists()), None)
    if parent is not None and parent == directory.parent and os.access(parent, os.W_OK | os.X_OK):
        return Check("dvc remote", OK, f"{described} does not exist yet; the first push creates it")
    return Check(
        "dvc remote",
        FAIL,
        f"{described} does not exist (is the share mounted?)",
        f"mount it or create it (`mkdir -p {directory}`), or set another: `invoke data.remote --url DIR`",
        EXIT_UNREACHABLE,
    )


def check_port(port: int) -> Check:
    """The notebook's preferred port is free on 127.0.0.1 (else `invoke notebook` takes another)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            return Check(
                "notebook port",
                WARN,
                f"127.0.0.1:{port} is taken ({error.strerror}); `invoke notebook` will use another port",
                f"to keep {port}, stop what listens there (`ss -ltnp 'sport = :{port}'` shows it)",
            )
    return Check("notebook port", OK, f"127.0.0.1:{port} is free")


# --- running them --------------------------------------------------------------------------------
def _skipped(name: str, why: str) -> Check:
    return Check(name, SKIP, why)


def run_checks(start: Path | None = None, *, port: int | None = None) -> list[Check]:
    """Every check, in table order; the experiment's checks only inside an experiment."""
    from labship.notebook import PREFERRED_PORT

    checks = [check_engine(), check_compose()]
    engine_up = not checks[0].failed
    checks.append(check_builder() if engine_up else _skipped("image builder", "needs the engine"))
    config, problem = _experiment(start)
    if config is None:
        checks.append(problem)
    else:
        checks.append(check_base_image(config) if engine_up else _skipped("base image", "needs the engine"))
    checks += [
        check_disk(config.root if config else (start or Path.cwd())),
        check_git_identity(start or Path.cwd()),
    ]
    if config is not None:
        checks += [check_lock(config), check_remote(config)]
    checks.append(check_port(port or PREFERRED_PORT))
    return checks


def _experiment(start: Path | None) -> tuple[LabshipConfig | None, Check]:
    """The experiment's configuration, or a row saying why the experiment checks do not run."""
    try:
        find_root(start)
    except ConfigError:
        return None, _skipped("experiment", "not inside an experiment: base image, lock, remote not checked")
    try:
        return load_config(start), _skipped("experiment", "")
    except ConfigError as error:
        return None, Check(
            "experiment", FAIL, str(error), "fix pyproject.toml as the message says", EXIT_CONFIG
        )


def exit_code(checks: Sequence[Check], *, strict: bool = False) -> int:
    """0 when ready; else the code of the first failed check (with `strict`, warnings count too)."""
    for check in checks:
        if check.failed or (strict and check.status == WARN):
            return check.exit_code
    return 0


def format_table(checks: Sequence[Check], width: int = TABLE_WIDTH) -> str:
    """The checks as a plain table that fits `width` columns: long text wraps in the last column."""
    text_width = width - NAME_WIDTH - STATUS_WIDTH - 2
    lines = [f"{'check':<{NAME_WIDTH}} {'':<{STATUS_WIDTH}} result / fix".rstrip()]
    for check in checks:
        wrapped = textwrap.wrap(check.found, text_width) or [""]
        if check.fix and check.status != OK:
            wrapped += textwrap.wrap("fix: " + check.fix, text_width, subsequent_indent="     ")
        lines.append(f"{check.name:<{NAME_WIDTH}} {check.status:<{STATUS_WIDTH}} {wrapped[0]}".rstrip())
        lines += [" " * (NAME_WIDTH + STATUS_WIDTH + 2) + more for more in wrapped[1:]]
    return "\n".join(lines)


def verdict(checks: Sequence[Check], *, strict: bool = False) -> str:
    """The last line: ready, or how many checks failed and the exit status."""
    failed = [c.name for c in checks if c.failed or (strict and c.status == WARN)]
    if not failed:
        warned = sum(1 for c in checks if c.status == WARN)
        return "ready" + (f" ({warned} warning{'s' * (warned != 1)})" if warned else "")
    return f"not ready: {', '.join(failed)} (exit {exit_code(checks, strict=strict)})"


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m labship.doctor [--strict]`: the same preflight outside an experiment (e.g. the demo)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--strict", action="store_true", help="warnings make the exit status non-zero")
    parser.add_argument("--port", type=int, default=None, help="notebook port to check (default 8888)")
    options = parser.parse_args(argv)
    checks = run_checks(port=options.port)
    print(format_table(checks))
    print(f"\n{verdict(checks, strict=options.strict)}")
    return exit_code(checks, strict=options.strict)


if __name__ == "__main__":
    sys.exit(main())
