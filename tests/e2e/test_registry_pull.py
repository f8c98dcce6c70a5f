"""A teammate's first launch pulls the published image instead of building it (issue 11).

Checkout A (a clone of the session's uv experiment, under a repository name of its own in the
local registry) runs `invoke build --push`. Clone B, with no image of that repository in the local
store, runs `invoke notebook`: it pulls the content-tagged image (same image id as pushed, no build
step) and Jupyter answers. After a lock change B's launch builds instead and says which input
changed. Real engine, real `docker-registry` on 127.0.0.1, real Jupyter; every image of the
private repository is removed at the end (never another test's).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from labship import images
from labship.config import load_config
from labship.notebook import compose_project
from tests.e2e.conftest import VARIANT, BuiltExperiment, compose_containers, invoke, run

pytestmark = [pytest.mark.docker, pytest.mark.slow]

URL = re.compile(r"http://127\.0\.0\.1:(\d+)/lab/tree/\S+\?token=([0-9a-f]{32,})")
IDENTITY = ["-c", "user.name=teammate", "-c", "user.email=teammate@example.org"]


def image_id(tag: str) -> str:
    return subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", tag], capture_output=True, text=True, check=True
    ).stdout.strip()


def repository_tags(repository: str) -> list[str]:
    listed = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", repository],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [tag for tag in listed if not tag.endswith(":<none>")]


def remove_repository(repository: str) -> None:
    """Remove every local tag of `repository`: a name only this test uses."""
    if tags := repository_tags(repository):
        subprocess.run(["docker", "rmi", "--force", *tags], capture_output=True, check=False)


def api_ready(output: str) -> None:
    """The printed URL answers /api/status with its token."""
    match = URL.search(output)
    assert match, output
    request = urllib.request.Request(f"http://127.0.0.1:{match[1]}/api/status")
    request.add_header("Authorization", f"token {match[2]}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def clone(source: Path, target: Path) -> Path:
    run(["git", "clone", "-q", str(source), str(target)], source.parent)
    return target


def relock_with_one_more_dependency(root: Path) -> None:
    """A real lock change: `six` joins the notebook group, then `uv lock` (PyPI is reachable)."""
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("notebook = [\n", 'notebook = [\n    "six>=1.16",\n', 1)
    )
    uv = Path(sys.executable).parent / "uv"
    run([str(uv), "lock"], root, env={"UV_PYTHON_DOWNLOADS": "never"}, timeout=300)


@pytest.mark.parametrize("built_experiment", ["uv"], indirect=True)
def test_teammate_pulls_the_published_image_and_builds_after_a_lock_change(
    built_experiment: BuiltExperiment, tmp_path: Path
) -> None:
    # Only this test uses this name in the session's registry, whose random port is part of every local
    # tag: removing them touches no other image. (The name reaches no cached layer: the dependency
    # layer depends only on the locked pins, shared with the session's other uv builds.)
    name = "traffic-team"
    repository = f"{built_experiment.registry}/{name}"
    checkout_a = clone(built_experiment.root, tmp_path / "a")
    pyproject = checkout_a / "pyproject.toml"
    # the first `image =` is [tool.labship]'s (the notebooks' name their variant)
    pyproject.write_text(re.sub(r'(?m)^image = ".*"$', f'image = "{name}"', pyproject.read_text(), count=1))
    run(["git", *IDENTITY, "commit", "-qam", "own image repository"], checkout_a)
    checkout_b = clone(checkout_a, tmp_path / "b")
    # the data is DVC's business (tested elsewhere): B gets A's processed files as they are
    shutil.copytree(built_experiment.root / "data" / "processed" / "pems", checkout_b / "data/processed/pems")
    project_b = compose_project(load_config(checkout_b), "traffic")
    try:
        built = invoke(
            checkout_a, "build", "--variant", VARIANT, "--push", env={"LABSHIP_BUILDER": "buildkit"}
        )
        config_a = load_config(checkout_a)
        published = images.content_image(config_a, config_a.image(VARIANT))
        assert re.fullmatch(rf"{re.escape(repository)}:{VARIANT}-c[0-9a-f]{{12}}", published)
        assert f"pushing {published}" in built
        pushed_id = image_id(published)
        host, path = repository.split("/", 1)
        with urllib.request.urlopen(f"http://{host}/v2/{path}/tags/list", timeout=10) as response:
            assert published.rsplit(":", 1)[1] in json.loads(response.read())["tags"]

        remove_repository(repository)  # B's machine has never seen this image
        assert not images.image_exists(published)
        config_b = load_config(checkout_b)
        assert (
            images.content_image(config_b, config_b.image(VARIANT)) == published
        )  # same recipe, other clone

        first = invoke(checkout_b, "notebook", "--detach", timeout=600)
        assert f"no local image {published}: pulling it" in first
        assert f"using {published} (pulled from {built_experiment.registry}" in first
        assert "building" not in first and f"{VARIANT} | " not in first  # no build step ran
        assert image_id(published) == pushed_id  # the very image A pushed
        api_ready(first)
        invoke(checkout_b, "notebook", "--stop")

        relock_with_one_more_dependency(checkout_b)
        config_b = load_config(checkout_b)
        rebuilt = images.content_image(config_b, config_b.image(VARIANT))
        assert rebuilt != published
        second = invoke(checkout_b, "notebook", "--detach", timeout=900)
        why = (
            f"uv.lock changed since the last image of variant '{VARIANT}' here ({published}); "
            f"registry {host}: it has no {rebuilt} (not published yet): building {rebuilt}"
        )
        assert why in second
        assert image_id(rebuilt) != pushed_id
        api_ready(second)
    finally:
        subprocess.run(
            [sys.executable, "-m", "invoke", "notebook", "--stop"], cwd=checkout_b, capture_output=True
        )
        remove_repository(repository)
    assert compose_containers(project_b) == []
    assert repository_tags(repository) == []
