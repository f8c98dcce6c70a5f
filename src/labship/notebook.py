"""Start, watch and stop the Jupyter server of one notebook with `docker compose`.

`compose.yaml` (from the template) holds what every launch shares: loopback-only port, token
required, host uid, no capabilities, src/ and notebooks/ mounted. Each launch adds, in the
git-ignored `.labship/` directory:

- `notebook-NAME.env`: the fresh random token, the port, the uid and the image (mode 0600);
- `notebook-NAME.compose.yaml`: the image of the notebook's variant and its data, mounted read-only.

`--stop` (or Ctrl-C while the command runs in the foreground) removes the container and both files.

What labship decides cannot be overridden from outside:

- compose gives the calling shell's variables precedence over `--env-file`, so every compose call
  runs with the launch variables (token, port, uid/gid, image) removed from the inherited
  environment and set from the launch's env file (`launch_environment`);
- a notebook's `data` paths must be relative and resolve (symlinks followed) to a directory inside
  the repository; the mount uses the resolved path (`data_mounts`);
- one start per notebook at a time: `start_notebook` holds `.labship/notebook-NAME.lock` (flock)
  from the "already running?" check until the server answers, so a second start waits for the
  first and then reports it as running instead of racing it for the port and the files;
- when the engine answers "port is already allocated" (another program took the free port between
  the probe and `up`), the launch is retried on a new port.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from labship import data, images
from labship._fs import write_atomic, write_secret
from labship.compose import compose_argv
from labship.config import LabshipConfig, Notebook
from labship.errors import EXIT_CONFIG, LabshipError

try:
    import fcntl
except ImportError:  # Windows: no flock; one launch at a time is then the user's business
    fcntl = None  # type: ignore[assignment]

CONTAINER_PROJECT = "/home/jovyan/project"
SERVICE = "jupyter"
PREFERRED_PORT = 8888
READY_TIMEOUT_SECONDS = 120.0
# The variables compose.yaml reads and labship sets per launch: never taken from the caller's shell.
LAUNCH_VARIABLES = ("JUPYTER_TOKEN", "JUPYTER_HOST_PORT", "HOST_UID", "HOST_GID", "LABSHIP_IMAGE")
# Compose's own settings that would swap the files, project or env files labship passes.
COMPOSE_VARIABLES = ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_ENV_FILES", "COMPOSE_PROFILES")
# The engine's words when the host port was taken between our probe and `compose up`.
PORT_TAKEN_MARKERS = ("port is already allocated", "address already in use")
PORT_ATTEMPTS = 3
# A second start waits this long for the first to finish starting (its own ready timeout is 120 s).
LOCK_WAIT_SECONDS = READY_TIMEOUT_SECONDS + 30

Log = Callable[[str], None]


class NotebookError(LabshipError):
    """The server could not be started, reached or stopped; the message says what to do."""


@dataclass(frozen=True)
class Launch:
    """A running (or starting) server: where it listens and how to reach it."""

    notebook: str
    project: str
    image: str
    port: int
    token: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, notebook_path: Path) -> str:
        return f"{self.base_url}/lab/tree/{notebook_path.as_posix()}?token={self.token}"


@dataclass(frozen=True)
class ImageChoice:
    """The image a launch runs and how it got here: action is "local", "pull" or "build"."""

    tag: str
    action: str
    reason: str


def resolve_image(
    config: LabshipConfig,
    notebook: Notebook,
    *,
    base_image: str | None = None,
    build: bool = False,
    log: Log = print,
) -> ImageChoice:
    """The image of the notebook's variant with the current content tag (`images.content_tag`).

    A local image with that tag is used; else it is pulled from [tool.labship] registry (credentials
    from `docker login` only); else it is built, saying why (e.g. which input changed since the last
    image here). `-latest` is never run, so an image from an older lock is never used silently.
    `build` forces a local build.
    """
    variant = config.image(notebook.image)
    tag = images.content_image(config, variant, base_image)
    if build:
        reason = "--build asked for a local build"
    elif images.image_exists(tag):
        choice = ImageChoice(
            tag, "local", "built or pulled here before, same lock, groups, Dockerfile and base"
        )
        log(f"using the local image {tag} ({choice.reason})")
        return choice
    elif not config.registry:
        changed = images.describe_change(config, variant, base_image)
        reason = f"{changed}; no registry in [tool.labship] to pull from"
    else:
        log(f"no local image {tag}: pulling it from {config.registry}")
        pulled, why_not = images.pull_image(tag)
        if pulled:
            choice = ImageChoice(tag, "pull", f"pulled from {config.registry}, no build needed")
            log(f"using {tag} ({choice.reason})")
            return choice
        reason = f"{images.describe_change(config, variant, base_image)}; {why_not}"
    log(f"{reason}: building {tag}")
    images.build_images(config, variant=variant.name, base_image=base_image, log=log)
    return ImageChoice(tag, "build", reason)


def compose_project(config: LabshipConfig, notebook: str) -> str:
    """A compose project name unique to this checkout and notebook (two clones never collide)."""
    slug = re.sub(r"[^a-z0-9]+", "-", config.project_name.lower()).strip("-") or "experiment"
    digest = hashlib.sha256(str(config.root.resolve()).encode()).hexdigest()[:8]
    return f"labship-{slug}-{notebook}-{digest}"


def env_file(config: LabshipConfig, notebook: str) -> Path:
    return config.root / images.STATE_DIR / f"notebook-{notebook}.env"


def override_file(config: LabshipConfig, notebook: str) -> Path:
    return config.root / images.STATE_DIR / f"notebook-{notebook}.compose.yaml"


def lock_file(config: LabshipConfig, notebook: str) -> Path:
    return config.root / images.STATE_DIR / f"notebook-{notebook}.lock"


@contextlib.contextmanager
def launch_lock(
    config: LabshipConfig, notebook: str, *, wait: float = LOCK_WAIT_SECONDS, log: Log = print
) -> Iterator[None]:
    """Hold the notebook's lock file (flock); wait up to `wait` seconds for another start to finish."""
    if fcntl is None:
        yield
        return
    images.state_dir(config.root)
    path = lock_file(config, notebook)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        _acquire(descriptor, notebook, wait, log)
        yield
    finally:
        os.close(descriptor)  # releases the lock; the file stays (removing it would race a waiter)


def _acquire(descriptor: int, notebook: str, wait: float, log: Log) -> None:
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise NotebookError(
                    f"notebook {notebook!r} is being started by another `invoke notebook` (it holds "
                    f"{images.STATE_DIR}/notebook-{notebook}.lock) and did not finish within {wait:.0f} s: "
                    f"wait for it, or stop it with `invoke notebook --name {notebook} --stop`"
                ) from None
            if not told:
                log(f"notebook {notebook!r} is being started by another `invoke notebook`: waiting for it")
                told = True
            time.sleep(0.2)


def data_mounts(config: LabshipConfig, notebook: Notebook) -> list[tuple[Path, str]]:
    """(host directory, container path) of each `data` entry: relative, resolving inside the repository.

    An absolute path, a `..` or a symlink leading out of the repository, or the repository itself,
    is refused: the mount would expose (or, at a path like ../../etc, shadow) host directories.
    """
    root = config.root.resolve()
    mounts = []
    for path in notebook.data:
        where = f"{config.pyproject}: [tool.labship.notebooks.{notebook.name}] data entry {path.as_posix()!r}"
        if path.is_absolute():
            raise NotebookError(
                f"{where} is absolute: give a directory of the repository, relative to it, e.g. "
                "data/processed/pems",
                exit_code=EXIT_CONFIG,
            )
        resolved = (root / path).resolve()
        if resolved == root or not resolved.is_relative_to(root):
            raise NotebookError(
                f"{where} resolves to {resolved}, not a directory inside the repository {root}: "
                "notebooks may mount only the repository's own data (e.g. data/processed/pems)",
                exit_code=EXIT_CONFIG,
            )
        mounts.append((resolved, f"{CONTAINER_PROJECT}/{resolved.relative_to(root).as_posix()}"))
    return mounts


def ensure_data(config: LabshipConfig, notebook: Notebook, log: Log = print) -> None:
    """Pull the notebook's missing data with DVC before it is mounted; stop with what to run if that fails."""
    missing = data.missing_data(config, notebook)
    if not missing:
        return
    names = ", ".join(path.as_posix() for path in missing)
    targets = " ".join(f"--target {path.as_posix()}" for path in missing)
    log(f"notebook {notebook.name!r} reads {names}, missing here: pulling it with DVC")
    try:
        data.ensure_data(config, notebook, echo=sys.stderr)
    except data.DataError as error:
        raise NotebookError(
            f"notebook {notebook.name!r} reads {names} ([tool.labship.notebooks.{notebook.name}] data in "
            f"{config.pyproject}), which is missing here and could not be pulled: {error}. Fix that, then "
            f"run `invoke data.pull {targets}`, or `invoke compress` to make it from the raw CSV"
        ) from error


def free_port(preferred: int = PREFERRED_PORT) -> int:
    """`preferred` if nothing listens on 127.0.0.1:preferred, else a free port the kernel picks."""
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise NotebookError("no free TCP port on 127.0.0.1")


def engine_is_rootless() -> bool:
    """Whether the engine runs rootless (Docker rootless mode, Podman): its uid 0 is then the host user."""
    result = subprocess.run(
        ["docker", "info", "--format", "{{json .SecurityOptions}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return "rootless" in result.stdout


def container_user(*, rootless: bool = False) -> tuple[int, int]:
    """The uid:gid Jupyter runs as, so that src/ and notebooks/ are writable and what it writes there
    belongs to the host user: the host uid/gid (root included); under a rootless engine 0:0, which
    the engine's user namespace maps to the host user (a uid 1000 would land as a subordinate uid)."""
    if rootless:
        return 0, 0
    return os.getuid(), os.getgid()


def root_server_settings() -> dict[str, object]:
    """Compose settings for a server running as uid 0 (root host, rootless engine): start Jupyter
    directly with --allow-root. docker-stacks' start.sh would, as root, switch to jovyan with sudo,
    which `cap_drop: [ALL]` and no-new-privileges forbid (and jovyan could not write root's files)."""
    return {"entrypoint": ["tini", "-g", "--"], "command": ["jupyter", "lab", "--allow-root"]}


def compose_command(config: LabshipConfig, notebook: str, *args: str) -> list[str]:
    command = [*compose_argv(), "--project-name", compose_project(config, notebook)]
    command += ["--project-directory", str(config.root), "--file", str(config.root / "compose.yaml")]
    if override_file(config, notebook).exists():
        command += ["--file", str(override_file(config, notebook))]
    if env_file(config, notebook).exists():
        command += ["--env-file", str(env_file(config, notebook))]
    return [*command, *args]


def launch_environment(config: LabshipConfig, notebook: str) -> dict[str, str]:
    """The compose subprocess's environment: the caller's, minus every launch and compose variable,
    plus the launch's own values from its env file (without a launch, a placeholder token satisfies
    compose.yaml's `:?` guard for `ps`/`down`/`logs`)."""
    strip = {*LAUNCH_VARIABLES, *COMPOSE_VARIABLES}
    env = {key: value for key, value in os.environ.items() if key not in strip}
    values = _read_env_file(env_file(config, notebook))
    if values:
        env.update({key: values[key] for key in LAUNCH_VARIABLES if key in values})
    else:
        env["JUPYTER_TOKEN"] = "not-running"
    return env


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )


class ComposeError(NotebookError):
    """A compose command failed; `stderr` holds its output."""

    def __init__(self, message: str, *, stderr: str) -> None:
        super().__init__(message)
        self.stderr = stderr


def _compose(config: LabshipConfig, notebook: str, *args: str, check: bool = True) -> str:
    """Run a compose command with the launch's own values (see `launch_environment`)."""
    result = subprocess.run(
        compose_command(config, notebook, *args),
        capture_output=True,
        text=True,
        env=launch_environment(config, notebook),
        check=False,
    )
    if check and result.returncode != 0:
        stderr = result.stderr.strip()
        raise ComposeError(f"docker compose {' '.join(args)} failed: {stderr}", stderr=stderr)
    return result.stdout


def check_compose_available() -> None:
    """Fail early, with the fix, when no Compose v2 is found (see `labship.compose`)."""
    compose_argv()


def write_launch_files(config: LabshipConfig, notebook: Notebook, launch: Launch) -> None:
    """The env file (token, port, uid, image; mode 0600) and the override with the data mounts."""
    images.state_dir(config.root)
    uid, gid = container_user(rootless=engine_is_rootless())
    env_lines = {
        "JUPYTER_TOKEN": launch.token,
        "JUPYTER_HOST_PORT": str(launch.port),
        "HOST_UID": str(uid),
        "HOST_GID": str(gid),
        "LABSHIP_IMAGE": launch.image,
    }
    header = "# generated by `invoke notebook`; holds this launch's token: never commit\n"
    write_secret(
        env_file(config, notebook.name),
        header + "".join(f"{key}={value}\n" for key, value in env_lines.items()),
    )
    volumes = [
        {
            "type": "bind",
            "source": str(source),
            "target": target,
            "read_only": True,
            "bind": {"create_host_path": False, "selinux": "z"},
        }
        for source, target in data_mounts(config, notebook)
    ]
    override = {
        "services": {
            SERVICE: {
                "image": launch.image,
                "labels": {"org.labship.notebook": notebook.name},
                "volumes": volumes,
                **(root_server_settings() if uid == 0 else {}),
            }
        }
    }
    text = "# generated by `invoke notebook`: the notebook's data, read-only (JSON is YAML)\n"
    write_atomic(override_file(config, notebook.name), text + json.dumps(override, indent=2) + "\n")


def api_status(base_url: str, token: str | None, timeout: float = 2.0) -> int:
    """HTTP status of GET /api/status (200 with a good token, 403 without)."""
    request = urllib.request.Request(f"{base_url}/api/status")
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def container_state(config: LabshipConfig, notebook: str) -> str:
    """`running`, `exited`, ... of the notebook's container, or "" when there is none."""
    output = _compose(config, notebook, "ps", "--all", "--format", "json", check=False)
    states = []
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("["):
            states += [item.get("State", "") for item in json.loads(line)]
        elif line.startswith("{"):
            states.append(json.loads(line).get("State", ""))
    return states[0] if states else ""


def wait_until_ready(
    config: LabshipConfig, launch: Launch, timeout: float = READY_TIMEOUT_SECONDS, log: Log = print
) -> float:
    """Poll /api/status with the token until it answers 200; fail fast if the container dies."""
    started = time.monotonic()
    next_state_check = started
    while time.monotonic() - started < timeout:
        try:
            if api_status(launch.base_url, launch.token) == 200:
                return time.monotonic() - started
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() >= next_state_check:
            state = container_state(config, launch.notebook)
            if state and state not in ("running", "created", "restarting"):
                logs = _compose(config, launch.notebook, "logs", "--no-color", "--tail", "30", check=False)
                raise NotebookError(f"the Jupyter container stopped ({state}); its last log lines:\n{logs}")
            next_state_check = time.monotonic() + 2
        time.sleep(0.2)
    raise NotebookError(
        f"Jupyter did not answer on {launch.base_url}/api/status within {timeout:.0f} s: "
        f"see `invoke notebook --name {launch.notebook} --logs`"
    )


def start_notebook(
    config: LabshipConfig,
    name: str | None = None,
    *,
    base_image: str | None = None,
    build: bool = False,
    timeout: float = READY_TIMEOUT_SECONDS,
    log: Log = print,
) -> Launch:
    """Get the variant's image (`resolve_image`), start the server, wait until it answers; return the launch.

    On any failure or Ctrl-C during start-up the container and the launch files are removed.
    """
    notebook = config.notebook(name)
    if not (config.root / "compose.yaml").is_file():
        raise NotebookError(f"{config.root / 'compose.yaml'} is missing: it comes from the labship template")
    data_mounts(config, notebook)  # refuse a path outside the repository before pulling anything
    images.check_engine()
    check_compose_available()
    ensure_data(config, notebook, log)
    image = resolve_image(config, notebook, base_image=base_image, build=build, log=log).tag
    with launch_lock(config, notebook.name, log=log):
        if container_state(config, notebook.name) == "running":
            raise NotebookError(
                f"notebook {notebook.name!r} is already running: "
                f"`invoke notebook --name {notebook.name} --status` shows its URL, `--stop` stops it"
            )
        launch = Launch(
            notebook.name, compose_project(config, notebook.name), image, free_port(), secrets.token_hex(24)
        )
        try:
            launch = _up(config, notebook, launch, log)
            seconds = wait_until_ready(config, launch, timeout, log)
        except BaseException:
            stop_notebook(config, notebook.name, log=lambda _line: None)
            raise
    log(
        f"Jupyter is ready after {seconds:.1f} s (image {image}, data read-only: "
        f"{', '.join(p.as_posix() for p in notebook.data) or 'none'})"
    )
    return launch


def _up(config: LabshipConfig, notebook: Notebook, launch: Launch, log: Log) -> Launch:
    """`compose up` with the launch files; on "port is already allocated", again on a new port."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        write_launch_files(config, notebook, launch)
        try:
            _compose(
                config, notebook.name, "up", "--detach", "--no-build", "--pull", "never", "--remove-orphans"
            )
            return launch
        except ComposeError as error:
            if attempt == PORT_ATTEMPTS or not any(marker in error.stderr for marker in PORT_TAKEN_MARKERS):
                raise
            log(f"port {launch.port} was taken meanwhile: retrying on another port")
            launch = dataclasses.replace(launch, port=free_port(0))
    raise AssertionError("unreachable")  # the loop returns or raises


def stop_notebook(config: LabshipConfig, name: str | None = None, log: Log = print) -> None:
    """Remove the notebook's container and network, and the launch files (token included)."""
    notebook = config.notebook(name)
    _compose(config, notebook.name, "down", "--remove-orphans", "--volumes", "--timeout", "5")
    for path in (env_file(config, notebook.name), override_file(config, notebook.name)):
        path.unlink(missing_ok=True)
    log(f"notebook {notebook.name!r} stopped; no container left")


def read_launch(config: LabshipConfig, notebook: str) -> Launch | None:
    """The launch recorded in the env file, or None when the notebook was not started."""
    values = _read_env_file(env_file(config, notebook))
    if not values:
        return None
    return Launch(
        notebook,
        compose_project(config, notebook),
        values.get("LABSHIP_IMAGE", ""),
        int(values.get("JUPYTER_HOST_PORT", "0")),
        values.get("JUPYTER_TOKEN", ""),
    )


def notebook_status(config: LabshipConfig, name: str | None = None) -> str:
    """One line: the container state and, when running, the URL with its token."""
    notebook = config.notebook(name)
    state = container_state(config, notebook.name)
    launch = read_launch(config, notebook.name)
    if not state:
        hint = f"start it with `invoke notebook --name {notebook.name}`"
        return f"notebook {notebook.name!r}: not running ({hint})"
    line = f"notebook {notebook.name!r}: {state}"
    if launch and state == "running":
        line += f", image {launch.image}, {launch.url(notebook.path)}"
    return line


def notebook_logs(config: LabshipConfig, name: str | None = None, tail: int = 200) -> str:
    notebook = config.notebook(name)
    return _compose(config, notebook.name, "logs", "--no-color", "--tail", str(tail), check=False)


def serve_until_interrupted(config: LabshipConfig, launch: Launch, log: Log = print) -> None:
    """Keep the command in the foreground; Ctrl-C (or the container ending) stops and removes it."""
    try:
        while container_state(config, launch.notebook) == "running":
            time.sleep(1)
        log("the Jupyter container ended; removing it")
    except KeyboardInterrupt:
        log("\nCtrl-C: stopping the server")
    finally:
        stop_notebook(config, launch.notebook, log)
