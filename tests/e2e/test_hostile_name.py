"""A hostile project name, end to end (issue 8): real copier + hook (git, dvc, uv lock), a real
BuildKit build on the stand-in base, the kernelspec Jupyter reads in the built image.

On main a name such as `Bob's "traffic" $(touch /tmp/x) `id`` ran the command substitution as root
inside the build (the image held /tmp/x; the kernel's display name held `uid=0(root) ...`).
copier.yml's rule: project_name is free text, escaped for each place it lands. So the copy
accepts the name; nothing in it runs during the copy, the hook or the build, and Jupyter shows it
exactly as typed. The author name and the remote directory carry the same payload through the hook.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from labship.config import load_config
from tests.e2e.conftest import invoke, run
from tests.scaffold import scaffold

pytestmark = [pytest.mark.docker, pytest.mark.slow]


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
    images_to_remove.append(image)
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


@pytest.fixture(autouse=True)
def _engine(docker_engine: None) -> None:
    """Every test here needs the engine and the compose plugin (skipped with a reason otherwise)."""
