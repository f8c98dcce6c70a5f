"""A committed copy of this checkout with its real history, for render and update tests.

Copier renders a dirty local template by committing the working tree into a throwaway clone, a new
commit id each time; the id lands in `.copier-answers.yml` (`_commit`), so two renders of the same
edits would differ for a reason no user ever meets. `snapshot(dest)` clones this checkout (all of
its history, so `copier copy --vcs-ref <old commit>` works) and commits the working tree's edits on
top once; every render of the session then names the same commit.

A shallow clone, or one that lacks a commit a test starts from, is a broken test environment, not
a reason to skip: `require_commits` fails with the command that fixes it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.scaffold import TEMPLATE

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
