"""labship.notebook without an engine: data checks, ports, launch files, project names.
The server itself (start, token, execute, stop, Ctrl-C) is tested in tests/e2e."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from labship import notebook
from labship.config import load_config

PYPROJECT = """\
[project]
name = "Traffic Study"
version = "0.1.0"

[tool.labship]
image = "traffic"

[tool.labship.images.notebook]
groups = ["notebook"]

[tool.labship.notebooks.traffic]
path = "notebooks/traffic.ipynb"
image = "notebook"
data = ["data/processed/pems", "data/processed/weather"]
"""


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "data/processed/pems").mkdir(parents=True)
    (tmp_path / "data/processed/pems/part-0.parquet").write_bytes(b"PAR1")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def test_missing_data_that_cannot_be_pulled_names_the_pull_command(experiment: Path) -> None:
    config = load_config(experiment)
    (experiment / "data/processed/weather").mkdir()  # present but empty counts as missing
    with pytest.raises(notebook.NotebookError) as raised:
        notebook.ensure_data(config, config.notebook("traffic"), log=lambda _line: None)
    message = str(raised.value)
    # no DVC repository here, so the pull fails and says why, then what to run
    assert "could not be pulled" in message and "dvc init" in message
    assert "invoke data.pull --target data/processed/weather" in message
    assert "--target data/processed/pems" not in message  # only what is missing is pulled
    assert "[tool.labship.notebooks.traffic]" in message and "pyproject.toml" in message


def test_present_data_passes(experiment: Path) -> None:
    config = load_config(experiment)
    (experiment / "data/processed/weather").mkdir()
    (experiment / "data/processed/weather/w.parquet").write_bytes(b"PAR1")
    notebook.ensure_data(config, config.notebook())


def test_free_port_prefers_8888_style_port_and_falls_back() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        other = notebook.free_port(busy)
        assert other != busy
    assert notebook.free_port(busy) == busy  # free again


def test_launch_files_hold_token_privately_and_mount_data_read_only(experiment: Path) -> None:
    config = load_config(experiment)
    chosen = config.notebook("traffic")
    project = notebook.compose_project(config, "traffic")
    launch = notebook.Launch("traffic", project, "traffic:notebook-latest", 8899, "f" * 48)
    notebook.write_launch_files(config, chosen, launch)
    env_file = notebook.env_file(config, "traffic")
    assert env_file.stat().st_mode & 0o777 == 0o600
    values = dict(
        line.split("=", 1) for line in env_file.read_text().splitlines() if not line.startswith("#")
    )
    assert values["JUPYTER_TOKEN"] == "f" * 48 and values["JUPYTER_HOST_PORT"] == "8899"
    assert values["LABSHIP_IMAGE"] == "traffic:notebook-latest"
    override = json.loads(notebook.override_file(config, "traffic").read_text().split("\n", 1)[1])
    volumes = override["services"]["jupyter"]["volumes"]
    assert [(volume["target"], volume["read_only"]) for volume in volumes] == [
        ("/home/jovyan/project/data/processed/pems", True),
        ("/home/jovyan/project/data/processed/weather", True),
    ]
    assert all(volume["bind"]["create_host_path"] is False for volume in volumes)
    # the token never shows up as a change git could commit
    status = subprocess.run(
        ["git", "-C", str(experiment), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert ".labship" not in status
    assert notebook.read_launch(config, "traffic") == launch


def test_compose_project_is_unique_per_checkout(experiment: Path, tmp_path_factory) -> None:
    clone = tmp_path_factory.mktemp("clone")
    (clone / "pyproject.toml").write_text(PYPROJECT)
    first = notebook.compose_project(load_config(experiment), "traffic")
    second = notebook.compose_project(load_config(clone), "traffic")
    assert first != second
    assert first.startswith("labship-traffic-study-traffic-")


def test_jupyter_runs_as_the_host_user_root_included(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notebook.os, "getuid", lambda: 0)
    monkeypatch.setattr(notebook.os, "getgid", lambda: 0)
    assert notebook.container_user() == (0, 0)
    monkeypatch.setattr(notebook.os, "getuid", lambda: 1234)
    monkeypatch.setattr(notebook.os, "getgid", lambda: 1234)
    assert notebook.container_user() == (1234, 1234)
    # a rootless engine maps its uid 0 to the host user
    assert notebook.container_user(rootless=True) == (0, 0)


def test_launch_url_opens_the_notebook_with_its_token() -> None:
    launch = notebook.Launch("traffic", "p", "i", 8888, "abc")
    assert launch.url(Path("notebooks/traffic.ipynb")) == (
        "http://127.0.0.1:8888/lab/tree/notebooks/traffic.ipynb?token=abc"
    )


def test_a_root_server_starts_jupyter_directly_with_allow_root(
    experiment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As uid 0 (root host, rootless engine) docker-stacks' start.sh would sudo to jovyan, which the
    dropped capabilities forbid: the override starts Jupyter itself; other users keep the image's start."""
    config = load_config(experiment)
    chosen = config.notebook("traffic")
    launch = notebook.Launch("traffic", "p", "traffic:notebook-latest", 8899, "f" * 48)
    monkeypatch.setattr(notebook, "engine_is_rootless", lambda: False)

    def service(uid: int) -> dict:
        monkeypatch.setattr(notebook.os, "getuid", lambda: uid)
        monkeypatch.setattr(notebook.os, "getgid", lambda: uid)
        notebook.write_launch_files(config, chosen, launch)
        env = notebook.env_file(config, "traffic").read_text()
        assert f"HOST_UID={uid}\n" in env and f"HOST_GID={uid}\n" in env
        return json.loads(notebook.override_file(config, "traffic").read_text().split("\n", 1)[1])[
            "services"
        ]["jupyter"]

    root = service(0)
    assert root["entrypoint"] == ["tini", "-g", "--"]
    assert root["command"] == ["jupyter", "lab", "--allow-root"]
    user = service(1234)
    assert "entrypoint" not in user and "command" not in user
