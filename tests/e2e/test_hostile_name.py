"""Hostile input end to end (issue 8), on the real engine with built images.

A hostile project name: real copier + hook (git, dvc, uv lock), a real BuildKit build on the
stand-in base, the kernelspec Jupyter reads in the built image. On main a name such as
`Bob's "traffic" $(touch /tmp/x) `id`` ran the command substitution as root inside the build (the
image held /tmp/x; the kernel's display name held `uid=0(root) ...`). copier.yml's rule:
project_name is free text, escaped for each place it lands. So the copy accepts the name; nothing
in it runs during the copy, the hook or the build, and Jupyter shows it exactly as typed. The
author name and the remote directory carry the same payload through the hook.

A hostile shell: variables exported by the caller do not change labship's launch (token, port,
uid/gid, image, compose project).
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from labship import images
from labship.config import load_config
from labship.notebook import compose_project, container_user, engine_is_rootless
from tests.e2e.conftest import BuiltExperiment, compose_containers, free_port, invoke, run
from tests.scaffold import scaffold

pytestmark = [pytest.mark.docker, pytest.mark.slow]
URL = re.compile(r"http://127\.0\.0\.1:(\d+)/lab/tree/notebooks/traffic\.ipynb\?token=([0-9a-f]{32,})")


def test_hostile_project_name_runs_nothing_and_reaches_the_kernel_intact(
    tmp_path: Path, standin_base: str, images_to_remove: list[str]
) -> None:
    marker = f"/tmp/labship-pwned-{uuid.uuid4().hex[:12]}"
    name = f'Bob\'s "traffic" $(touch {marker}) `touch {marker}` {{{{ 7*7 }}}} \\'
    root = scaffold(
        tmp_path / "hostile",
        {
            "project_name": name,
            "project_slug": "hostile-name",
            "author_name": f"Eve $(touch {marker}) `touch {marker}`",
            "dvc_remote_url": f"../store $(touch {marker})",
            "registry": "labship-test.invalid/lab",
            "image_name": f"hostile-e2e-{uuid.uuid4().hex[:8]}",
            "sample_data": False,
        },
    )
    assert not Path(marker).exists(), "the copy or the hook ran the answer"
    config = load_config(root)
    image = f"{config.image_repository()}:notebook-latest"
    images_to_remove.extend([image, images.content_image(config, config.image("notebook"), standin_base)])
    output = invoke(
        root,
        "build",
        "--variant",
        "notebook",
        "--base-image",
        standin_base,
        env={"LABSHIP_BUILDER": "buildkit"},
    )
    head = run(["git", "rev-parse", "HEAD"], root).strip()
    images_to_remove.append(f"{config.image_repository()}:notebook-{head}")
    images_to_remove.append(f"{config.image_repository()}:notebook-{head}-dirty")
    assert "uid=" not in output

    in_image = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--entrypoint",
            "sh",
            image,
            "-c",
            f'test -e "{marker}" && echo ran || echo clean',
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert in_image == "clean", "the build ran the project name"
    specs = json.loads(
        subprocess.run(
            ["docker", "run", "--rm", image, "jupyter", "kernelspec", "list", "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["kernelspecs"]
    assert specs["project"]["spec"]["display_name"] == f"Python ({name})"
    assert not Path(marker).exists()


def test_exported_variables_do_not_change_the_launch(built_experiment: BuiltExperiment) -> None:
    """On main `HOST_UID=0 JUPYTER_TOKEN=weak invoke notebook` ran the server as root with the weak
    token (compose prefers the shell over --env-file) while labship printed its own token. Now the
    user is labship's choice (the host user), whatever the shell exports. The
    launch code is the same for both package managers: the uv experiment proves it."""
    if built_experiment.package_manager != "uv":
        pytest.skip("one package manager is enough for the launch environment")
    root = built_experiment.root
    project = compose_project(built_experiment.config, "traffic")
    hostile_port = free_port()
    exported = {
        "JUPYTER_TOKEN": "weak",
        "HOST_UID": "4242",  # not who labship runs the server as (the host user, root included)
        "HOST_GID": "4242",
        "JUPYTER_HOST_PORT": str(hostile_port),
        "LABSHIP_IMAGE": built_experiment.base_image,
        "COMPOSE_PROJECT_NAME": "hijacked",
    }
    try:
        output = invoke(root, "notebook", "--detach", env=exported, timeout=300)
        match = URL.search(output)
        assert match, output
        port, token = int(match.group(1)), match.group(2)
        assert port != hostile_port and token != "weak"
        status = f"http://127.0.0.1:{port}/api/status"
        assert http_status(status, token) == 200 and http_status(status, "weak") == 403
        [container] = compose_containers(project)
        details = json.loads(
            subprocess.run(
                ["docker", "inspect", container], capture_output=True, text=True, check=True
            ).stdout
        )[0]
        uid, gid = container_user(rootless=engine_is_rootless())
        assert details["Config"]["User"] == f"{uid}:{gid}"
        built = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Id}}", built_experiment.tags[0]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert details["Image"] == built  # the image labship built, not the exported LABSHIP_IMAGE
        assert compose_containers("hijacked") == []
    finally:
        invoke(root, "notebook", "--stop")
    assert compose_containers(project) == []


def http_status(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@pytest.fixture(autouse=True)
def _engine(docker_engine: None) -> None:
    """Every test here needs the engine and the compose plugin (skipped with a reason otherwise)."""
