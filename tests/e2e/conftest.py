"""Session fixtures of the end-to-end tests: real Docker engine, stand-in base, registry, built images.

Everything expensive is made once per session: the stand-in base image (kept across sessions: its
tag is a hash of its recipe), one scaffolded + compressed + built experiment per package manager,
and one Debian `docker-registry` on 127.0.0.1. Images and containers the tests create are removed
at the end of the session; the stand-in base is kept for the next run.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools import standin
from labship import images
from labship.compose import ComposeError, compose_argv
from labship.config import LabshipConfig, load_config
from tests.conftest import require
from tests.scaffold import scaffold

# uv builds with BuildKit and pushes to the local registry; Poetry builds with the legacy builder:
# together they prove both builders, both package managers and --push, each image built once.
BUILDERS = {"uv": "buildkit", "poetry": "legacy"}
VARIANT = "notebook"
PLANTED_SECRET = "labship-planted-secret-6b1f0c"


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 900) -> str:
    """Run a command, return its output; fail the test with the output when it fails."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout + result.stderr


def invoke(repo: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 900) -> str:
    """`invoke ARGS` in an experiment repository, as a user types it."""
    return run([sys.executable, "-m", "invoke", *args], repo, env, timeout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def docker_answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def compose_containers(project: str) -> list[str]:
    """Ids of every container (running or not) of a compose project."""
    output = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return output.split()


@pytest.fixture(scope="session")
def docker_engine() -> None:
    require(shutil.which("docker") is not None and docker_answers(), "no Docker engine answers `docker info`")
    try:
        compose_argv()
    except ComposeError as error:
        require(False, str(error))


@pytest.fixture(scope="session")
def standin_base(docker_engine: None) -> str:
    """The stand-in docker-stacks base (built once, then reused by its recipe-hash tag)."""
    tag = standin.default_tag()
    if not standin.image_exists(tag):
        require(
            shutil.which("debootstrap") is not None,
            "debootstrap is not installed (apt-get install debootstrap)",
        )
        require(os.geteuid() == 0, "building the stand-in base needs root (debootstrap, chroot)")
    return standin.build_standin_base(tag)


@pytest.fixture(scope="session")
def local_registry(tmp_path_factory: pytest.TempPathFactory, docker_engine: None) -> Iterator[str]:
    """Debian's `docker-registry` (distribution) on a free 127.0.0.1 port, stopped at the end."""
    binary = shutil.which("docker-registry")
    require(binary is not None, "docker-registry is not installed (apt-get install docker-registry)")
    assert binary is not None
    directory = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = directory / "config.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    with (directory / "registry.log").open("w") as log:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail(f"docker-registry did not start:\n{(directory / 'registry.log').read_text()}")
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class BuiltExperiment:
    """A scaffolded, compressed experiment whose `notebook` image is built (and, for uv, pushed)."""

    package_manager: str
    root: Path
    config: LabshipConfig
    base_image: str
    builder: str
    build_output: str
    tags: tuple[str, ...]
    registry: str


def _remove_images(tags: list[str]) -> None:
    if tags:
        subprocess.run(["docker", "rmi", "--force", *tags], capture_output=True, check=False)


def legacy_builder_stage_images(build_output: str) -> list[str]:
    """Ids of the untagged builder-stage images a legacy build kept: the last ` ---> ID` before each
    later `FROM` step. Only these are removed; other sessions' images are never touched."""
    stage_ids, last_id = [], ""
    for line in build_output.splitlines():
        text = line.split(" | ", 1)[-1]
        if match := re.match(r"^ ---> ([0-9a-f]{12})$", text):
            last_id = match[1]
        elif re.match(r"^Step \d+/\d+ : FROM ", text) and last_id:
            stage_ids.append(last_id)
    return stage_ids


@pytest.fixture(scope="session")
def images_to_remove(docker_engine: None) -> Iterator[list[str]]:
    """Tags and ids of images the tests create; removed at the end of the session (never the base)."""
    tags: list[str] = []
    yield tags
    _remove_images(tags)


@pytest.fixture(scope="session", params=["uv", "poetry"])
def built_experiment(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    standin_base: str,
    local_registry: str,
    images_to_remove: list[str],
) -> BuiltExperiment:
    """scaffold -> invoke compress -> invoke build (uv: BuildKit + --push; Poetry: legacy builder)."""
    manager = str(request.param)
    registry = f"{local_registry}/lab" if manager == "uv" else "labship-test.invalid/lab"
    root = scaffold(
        tmp_path_factory.mktemp(f"e2e-{manager}") / "traffic",
        {"package_manager": manager, "registry": registry, "image_name": f"traffic-e2e-{manager}"},
    )
    invoke(root, "compress")
    # What must never reach the build context: 100 MB of data and a secret in .env.
    with (root / "data" / "raw" / "big.bin").open("wb") as big:
        big.write(os.urandom(1024 * 1024) * 100)
    (root / ".env").write_text(f"API_TOKEN={PLANTED_SECRET}\n")
    # The base goes into [tool.labship] and is committed, as a team does: every checkout and
    # `invoke notebook` then compute the same content tag as this build.
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        re.sub(r'(?m)^base-image = ".*"$', f'base-image = "{standin_base}"', pyproject.read_text())
    )
    run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qam", "stand-in base"],
        root,
    )
    config = load_config(root)
    args = ["build", "--variant", VARIANT, "--base-image", standin_base]
    if manager == "uv":
        args.append("--push")
    head = run(["git", "rev-parse", "HEAD"], root).strip()
    dirty = "-dirty" if run(["git", "status", "--porcelain", "--untracked-files=no"], root).strip() else ""
    repository = config.image_repository()
    tags = (f"{repository}:{VARIANT}-latest", f"{repository}:{VARIANT}-{head}{dirty}")
    images_to_remove.extend([*tags, images.content_image(config, config.image(VARIANT))])
    output = invoke(root, *args, env={"LABSHIP_BUILDER": BUILDERS[manager]}, timeout=1500)
    images_to_remove.extend(legacy_builder_stage_images(output))
    return BuiltExperiment(manager, root, config, standin_base, BUILDERS[manager], output, tags, registry)
