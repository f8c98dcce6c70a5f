"""End to end, for uv and Poetry: copier copy -> invoke compress -> invoke build -> invoke notebook
-> Jupyter answers with its token only -> the example notebook runs in the container and prints the
Parquet row count -> invoke notebook --stop leaves no container. Real engine, real server, real registry.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow.dataset
import pytest

from labship.notebook import compose_project
from tests.e2e.conftest import BuiltExperiment, compose_containers, invoke, run

pytestmark = [pytest.mark.docker, pytest.mark.slow]

URL = re.compile(r"http://127\.0\.0\.1:(\d+)/lab/tree/notebooks/traffic\.ipynb\?token=([0-9a-f]{32,})")


def http_status(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def inspect(ref: str) -> dict:
    output = subprocess.run(["docker", "inspect", ref], capture_output=True, text=True, check=True).stdout
    return json.loads(output)[0]


def test_build_tags_labels_and_summary(built_experiment: BuiltExperiment) -> None:
    """Both tags exist on one image with the OCI labels; the summary names image, size, time, cache."""
    latest, by_commit = built_experiment.tags
    image = inspect(latest)
    assert inspect(by_commit)["Id"] == image["Id"]
    labels = image["Config"]["Labels"]
    head = run(["git", "rev-parse", "HEAD"], built_experiment.root).strip()
    assert labels["org.opencontainers.image.revision"].startswith(head)
    assert labels["org.labship.groups"] == "notebook"
    assert labels["org.opencontainers.image.base.name"] == built_experiment.base_image
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labels["org.opencontainers.image.created"])
    assert image["Config"]["User"] == "1000"  # non-root, as the base contract
    summary = built_experiment.build_output
    assert re.search(rf"{re.escape(latest)}\s+\d+(\.\d)? [MG]B\s+\S+ (s|min)\s+\d+/\d+\s+(yes|no)", summary)
    assert ("BuildKit" if built_experiment.builder == "buildkit" else "legacy builder") in summary


def test_push_reaches_the_registry(built_experiment: BuiltExperiment) -> None:
    """uv's build ran with --push: the local registry lists both tags (Poetry's did not push)."""
    if built_experiment.package_manager != "uv":
        assert "pushing" not in built_experiment.build_output
        return
    host, namespace = built_experiment.registry.split("/", 1)
    name = f"{namespace}/{built_experiment.config.image_name}"
    with urllib.request.urlopen(f"http://{host}/v2/{name}/tags/list", timeout=10) as response:
        listed = set(json.loads(response.read())["tags"])
    assert {tag.rsplit(":", 1)[1] for tag in built_experiment.tags} <= listed


def test_build_context_holds_no_data_or_env(built_experiment: BuiltExperiment) -> None:
    """A 100 MB data/raw/big.bin and .env were in the repository; the context stayed tiny."""
    output = built_experiment.build_output
    legacy = re.search(r"Sending build context to Docker daemon\s+([\d.]+)([kMG]?B)", output)
    buildkit = re.findall(r"transferring context: ([\d.]+)([kMG]?B)", output)
    number, unit = legacy.groups() if legacy else buildkit[-1]
    size = float(number) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[unit]
    assert size < 2e6, f"build context of {size / 1e6:.1f} MB: data/ or .env leaked into it"


def test_notebook_serves_runs_the_example_and_stops(built_experiment: BuiltExperiment) -> None:
    root, config = built_experiment.root, built_experiment.config
    project = compose_project(config, "traffic")
    try:
        output = invoke(root, "notebook", "--detach", timeout=300)
        match = URL.search(output)
        assert match, output
        port, token = match.group(1), match.group(2)
        status_url = f"http://127.0.0.1:{port}/api/status"
        assert http_status(status_url, token) == 200
        assert http_status(status_url) == 403
        assert http_status(status_url, "wrong-token") == 403
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/kernelspecs")
        request.add_header("Authorization", f"token {token}")
        with urllib.request.urlopen(request, timeout=5) as response:
            kernelspecs = json.loads(response.read())
        # the project's venv is the default and only kernel; the server's own python3 is hidden
        assert kernelspecs["default"] == "project" and list(kernelspecs["kernelspecs"]) == ["project"]
        assert http_status(f"http://127.0.0.1:{port}/api/kernelspecs") == 403

        [container] = compose_containers(project)
        details = inspect(container)
        bindings = details["HostConfig"]["PortBindings"]["8888/tcp"]
        assert {binding["HostIp"] for binding in bindings} == {"127.0.0.1"}
        assert details["HostConfig"]["CapDrop"] == ["ALL"]
        assert "no-new-privileges:true" in details["HostConfig"]["SecurityOpt"]
        # the host user (root included), so what Jupyter writes in src/ and notebooks/ stays theirs
        assert details["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
        mounts = {mount["Destination"]: mount["RW"] for mount in details["Mounts"]}
        assert mounts == {
            "/home/jovyan/project/src": True,
            "/home/jovyan/project/notebooks": True,
            "/home/jovyan/project/data/processed/pems": False,
        }
        launch_env = root / ".labship" / "notebook-traffic.env"
        assert token in launch_env.read_text() and launch_env.stat().st_mode & 0o077 == 0
        assert run(["git", "check-ignore", str(launch_env)], root).strip()

        # the example notebook, executed by the server's nbconvert with the project kernel
        executed = subprocess.run(
            ["docker", "exec", container, "jupyter", "nbconvert", "--to", "notebook", "--execute",
             "notebooks/traffic.ipynb", "--output-dir", "/tmp", "--output", "executed.ipynb"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert executed.returncode == 0, executed.stderr
        notebook = json.loads(
            subprocess.run(
                ["docker", "exec", container, "cat", "/tmp/executed.ipynb"], capture_output=True, check=True
            ).stdout
        )
        printed = "".join(
            "".join(out.get("text", "")) for cell in notebook["cells"] for out in cell.get("outputs", [])
        )
        expected_rows = pyarrow.dataset.dataset(root / "data" / "processed" / "pems").count_rows()
        assert expected_rows > 0
        assert f"rows: {expected_rows}" in printed
        assert notebook["metadata"]["kernelspec"]["name"] == "project"  # ran in the project's venv
        uid = subprocess.run(
            ["docker", "exec", container, "id", "-u"], capture_output=True, text=True, check=True
        )
        assert uid.stdout.strip() == str(os.getuid())

        assert "running" in invoke(root, "notebook", "--status")
        assert "ServerApp" in invoke(root, "notebook", "--logs")
    finally:
        stopped = invoke(root, "notebook", "--stop")
    assert "no container left" in stopped
    assert compose_containers(project) == []
    assert not (root / ".labship" / "notebook-traffic.env").exists()
    assert "not running" in invoke(root, "notebook", "--status")


def test_ctrl_c_leaves_no_container(built_experiment: BuiltExperiment) -> None:
    """In the foreground, Ctrl-C (SIGINT) stops the server and removes its container."""
    root, config = built_experiment.root, built_experiment.config
    project = compose_project(config, "traffic")
    process = subprocess.Popen(
        [sys.executable, "-m", "invoke", "notebook"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    seen = []
    try:
        deadline = time.monotonic() + 180
        for line in process.stdout:
            seen.append(line)
            if URL.search(line) or time.monotonic() > deadline:
                break
        assert URL.search("".join(seen)), "".join(seen)
        assert len(compose_containers(project)) == 1
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            invoke(root, "notebook", "--stop")
    assert "no container left" in rest
    assert compose_containers(project) == []


def test_missing_data_is_pulled_before_the_server_starts(
    built_experiment: BuiltExperiment, tmp_path: Path
) -> None:
    root = built_experiment.root
    data = root / "data" / "processed" / "pems"
    aside = tmp_path / "pems"
    data.rename(aside)
    project = compose_project(built_experiment.config, "traffic")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "invoke", "notebook", "--detach"], cwd=root, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "missing here: pulling it with DVC" in result.stdout + result.stderr
        pulled = {path.name: path.read_bytes() for path in data.glob("*.parquet")}
        assert pulled and pulled == {path.name: path.read_bytes() for path in aside.glob("*.parquet")}
    finally:
        subprocess.run([sys.executable, "-m", "invoke", "notebook", "--stop"], cwd=root, capture_output=True)
        shutil.rmtree(data, ignore_errors=True)
        aside.rename(data)
    assert compose_containers(project) == []
