"""The quickstart's demo, `bash dev.sh demo`, as the README gives it: end to end, image steps included,
on a host without a Compose v2 plugin (empty DOCKER_CONFIG: labship's pinned compose runs). It must
end with a Jupyter server that answers with the token it printed; a data-only run (--no-docker)
says so instead of pretending the image steps ran."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from labship import compose
from labship.config import load_config
from tests.conftest import require

ROOT = Path(__file__).resolve().parent.parent
URL = re.compile(
    r"Jupyter is running: (http://127\.0\.0\.1:(\d+)/lab/tree/notebooks/traffic\.ipynb\?token=([0-9a-f]+))"
)


def status(port: str, token: str | None) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/status")
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def demo_env(tmp_path: Path) -> dict[str, str]:
    """The user's environment, but with no compose CLI plugin (an empty DOCKER_CONFIG)."""
    config = tmp_path / "docker-config"
    config.mkdir()
    env = {**os.environ, "DOCKER_CONFIG": str(config)}
    # so the demo can only use the pinned binary labship brings (Debian's v1 script is skipped)
    assert compose.find_compose(env) == [str(compose.bundled_binary())]
    env.pop("LABSHIP_SAMPLE_SIZE", None)  # the demo's own (full-size) sample
    return env


def remove_images(repository: str) -> None:
    listed = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", repository],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if listed:
        subprocess.run(["docker", "rmi", "--force", *listed], capture_output=True, check=False)


@pytest.mark.docker
@pytest.mark.slow
def test_demo_ends_with_a_server_answering_with_the_printed_token(tmp_path: Path) -> None:
    require(
        subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0,
        "no Docker engine",
    )
    demo = tmp_path / "demo"
    env = demo_env(tmp_path)
    result = subprocess.run(
        ["bash", "dev.sh", "demo", "--dest", str(demo)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    output = result.stdout + result.stderr
    # kept with the screenshots (CI artifacts): the report, the time of each step, the URL
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "demo.log").write_text(output)
    try:
        assert result.returncode == 0, output[-6000:]
        match = URL.search(output)
        assert match, output[-3000:]
        _url, port, token = match.groups()
        assert status(port, token) == 200
        assert status(port, None) == 403
        assert "data/processed/pems: 7 files, identical in the clone" in output
        assert re.search(r"Parquet: \d+\.\dx smaller", output)
        assert re.search(r"upload at [\d.]+ Mbit/s: .+ -> .+", output)
        for step in (
            "0. preflight",
            "1. scaffold",
            "2. compress",
            "3. share",
            "5. invoke build",
            "6. invoke notebook",
        ):
            assert re.search(rf"^\s+{re.escape(step)}.*\d+\.\d s$", output, re.MULTILINE), step
    finally:
        if (demo / "pyproject.toml").exists():
            subprocess.run(
                [sys.executable, "-m", "invoke", "notebook", "--stop"], cwd=demo, env=env, capture_output=True
            )
            remove_images(load_config(demo).image_repository())


def test_data_only_demo_says_the_image_steps_did_not_run(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env["LABSHIP_SAMPLE_SIZE"] = "small"
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "demo", "--dest", str(demo), "--no-docker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "labship compress" in output  # the report table of `invoke compress`
    assert "Stage 'compress' didn't change, skipping" in output  # the second `dvc repro`
    assert "data/processed/pems: 4 files, identical in the clone" in output
    assert "data/raw/pems: 4 files, identical in the clone" in output
    assert "(--no-docker: the image and notebook steps were not run)" in output
    assert "Jupyter is running" not in output
    assert (tmp_path / "demo-dvc-storage" / "files" / "md5").is_dir()
    assert sorted(p.name for p in (tmp_path / "demo-clone" / "data" / "processed" / "pems").glob("*.parquet"))
