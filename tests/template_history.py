"""A committed copy of this checkout with its real history, for render and update tests.

Copier renders a dirty local template by committing the working tree into a throwaway clone, a new
commit id each time; the id lands in `.copier-answers.yml` (`_commit`), so two renders of the same
edits would differ for a reason no user ever meets. `snapshot(dest)` clones this checkout (all of
its history, so `copier copy --vcs-ref <old commit>` works) and commits the working tree's edits on
top once; every render of the session then names the same commit.

A shallow clone, or one that lacks a commit a test starts from, is a broken test environment, not
a reason to skip: `require_commits` fails with the command that fixes it. `render_files` renders a
version without the hook (fast, enough for `copier update`); `update_step` runs the generated
update workflow's `update` step locally, as a runner would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import copier
import pytest
import yaml

from tests.scaffold import TEMPLATE, TEST_PYTHON

VENV_BIN = Path(sys.executable).parent
WORKFLOW = ".github/workflows/update.yml"  # the generated scheduled-update workflow
IDENTITY = ("-c", "user.name=labship tests", "-c", "user.email=tests@localhost", "-c", "commit.gpgsign=false")


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"git {' '.join(args)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def require_commits(*commits: str, repo: Path = TEMPLATE) -> None:
    """Fail (never skip) when the checkout is shallow or lacks one of `commits`."""
    if git(repo, "rev-parse", "--is-shallow-repository").strip() == "true":
        pytest.fail(
            f"{repo} is a shallow clone: the update tests start from real earlier commits; run `git fetch --unshallow`"
        )
    for commit in commits:
        found = subprocess.run(
            ["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=repo, capture_output=True, check=False
        )
        if found.returncode != 0:
            pytest.fail(
                f"{repo} has no commit {commit} (an earlier labship the update tests start from): "
                "run the tests from a full clone of labship (`git fetch --unshallow origin`)"
            )


def snapshot(dest: Path) -> Path:
    """Clone this checkout into `dest` and commit its uncommitted edits there; returns `dest`."""
    git(dest.parent, "clone", "--quiet", "--no-hardlinks", str(TEMPLATE), dest.name)
    listed = git(TEMPLATE, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        source, target = TEMPLATE / name, dest / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        elif target.is_file():
            target.unlink()  # deleted in the working tree
    git(dest, "add", "--all")
    if git(dest, "status", "--porcelain"):
        git(dest, *IDENTITY, "commit", "--quiet", "--no-verify", "-m", "working tree under test")
    return dest


def render_files(template: Path, dest: Path, vcs_ref: str) -> Path:
    """Files only (no hook), committed: enough for `copier update`, fast."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(
            str(template),
            dest,
            data={"python_version": TEST_PYTHON, "ci_provider": "github"},
            defaults=True,
            skip_tasks=True,
            vcs_ref=vcs_ref,
            quiet=True,
        )
    git(dest, "init", "--quiet", "--initial-branch=main")
    git(dest, "add", "--all")
    git(dest, *IDENTITY, "commit", "--quiet", "-m", "scaffold")
    return dest


def update_step(workflow_from: Path, repo: Path, runner_temp: Path) -> dict[str, str]:
    """Run the `update` step of `workflow_from`'s workflow in `repo` as a runner would; its outputs.

    An experiment made before the workflow existed gets it with its first update; the step is the
    same one the current template renders.
    """
    workflow = yaml.safe_load((workflow_from / WORKFLOW).read_text())
    (job,) = workflow["jobs"].values()
    step = next(step for step in job["steps"] if step.get("id") == "update")
    output = runner_temp / "github_output"
    output.write_text("")
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "COPIER": str(VENV_BIN / "copier"),  # the step's pinned `pipx run` needs the network
        "GITHUB_OUTPUT": str(output),
        "RUNNER_TEMP": str(runner_temp),
    }
    assert step["env"]["COPIER"].startswith("pipx run --spec copier==")
    result = subprocess.run(
        ["bash", "-c", step["run"]], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return dict(line.split("=", 1) for line in output.read_text().splitlines())
