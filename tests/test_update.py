"""`copier update`: a repository made from an older template version updates to the newer one.

Like doodba-copier-template's `cloned_template`, the test builds a throwaway git copy of this
checkout's template (uncommitted changes included) tagged v0.1.0, then a v0.2.0 that changes
files, and updates a project generated from v0.1.0 in which the user edited some files.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import copier
import pytest
import yaml

from labship.config import load_config
from tests.conftest import require
from tests.scaffold import TEMPLATE, scaffold

TEMPLATE_PATHS = ("copier.yml", "template", "hooks")
USER_FUNCTION = "\n\ndef mean_speed(total: float, count: int) -> float:\n    return total / count\n"


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"git {' '.join(args)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "--all")
    git(repo, "-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "-q", "-m", message)


@pytest.fixture(scope="module")
def template_versions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository holding this checkout's template as v0.1.0 and a changed v0.2.0."""
    require(shutil.which("git") is not None, "git is not installed")
    clone = tmp_path_factory.mktemp("template") / "labship"
    listed = git(TEMPLATE, "ls-files", "--cached", "--others", "--exclude-standard", "-z", *TEMPLATE_PATHS)
    for name in filter(None, listed.split("\0")):
        if (TEMPLATE / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TEMPLATE / name, clone / name)
    git(clone.parent, "init", "-q", "--initial-branch=main", clone.name)
    commit_all(clone, "template v0.1.0")
    git(clone, "tag", "v0.1.0")

    # v0.2.0: edits in files the user leaves alone, next to lines the user edits, and a new file
    readme = clone / "template/README.md.jinja"
    readme.write_text(readme.read_text() + "\n## Citing\n\nCite {{ project_name }} with its commit id.\n")
    gitignore = clone / "template/.gitignore"
    gitignore.write_text(gitignore.read_text() + "\n# logs of long runs\n*.log\n")
    pyproject = clone / "template/pyproject.toml.jinja"
    text = pyproject.read_text()
    old_comment = "# labship's settings: every `invoke` task and the CI workflow read this table"
    assert old_comment in text
    pyproject.write_text(
        text.replace(old_comment, "# labship's settings (see README): every task and the CI read this table")
    )
    (clone / "template/CONTRIBUTING.md").write_text("Open an issue before large changes.\n")
    commit_all(clone, "template v0.2.0")
    git(clone, "tag", "v0.2.0")
    return clone


@pytest.fixture(scope="module")
def updated(template_versions: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str], str]:
    """A project from v0.1.0, edited and committed by its user, then updated to v0.2.0.

    Returns the repository, the paths `copier update` changed, and the HEAD before the update.
    """
    repo = scaffold(
        tmp_path_factory.mktemp("project") / "experiment", vcs_ref="v0.1.0", template=template_versions
    )
    package_init = next((repo / "src").glob("*/__init__.py"))
    package_init.write_text(package_init.read_text() + USER_FUNCTION)
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            '    "scikit-learn>=1.5",\n', '    "scikit-learn>=1.5",\n    "xgboost>=2",\n'
        )
    )
    notebook = repo / "notebooks/traffic.ipynb"
    notebook.write_text(notebook.read_text().replace("# Traffic sensors", "# Traffic sensors of District 4"))
    commit_all(repo, "my analysis")
    head = git(repo, "rev-parse", "HEAD").strip()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_update(repo, defaults=True, unsafe=True, overwrite=True, vcs_ref="v0.2.0", quiet=True)
    changed = {line[3:] for line in git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()}
    return repo, changed, head


def test_update_brings_template_changes(updated: tuple[Path, set[str], str]) -> None:
    """New template lines and files arrive, and the answers file records the new version."""
    repo, _, _ = updated
    assert "## Citing" in (repo / "README.md").read_text()
    assert "Cite Traffic experiment with its commit id." in (repo / "README.md").read_text()
    assert "*.log" in (repo / ".gitignore").read_text()
    assert (repo / "CONTRIBUTING.md").read_text() == "Open an issue before large changes.\n"
    assert "# labship's settings (see README)" in (repo / "pyproject.toml").read_text()
    answers = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "v0.2.0"


def test_update_keeps_user_edits(updated: tuple[Path, set[str], str]) -> None:
    """The user's code, dependency and notebook edits survive; pyproject merges both sides."""
    repo, _, _ = updated
    assert USER_FUNCTION in next((repo / "src").glob("*/__init__.py")).read_text()
    pyproject = (repo / "pyproject.toml").read_text()
    assert '"xgboost>=2"' in pyproject
    assert "# Traffic sensors of District 4" in (repo / "notebooks/traffic.ipynb").read_text()
    assert load_config(repo).images  # still a valid [tool.labship]


def test_update_has_no_conflicts(updated: tuple[Path, set[str], str]) -> None:
    """No conflict markers and no .rej files anywhere; only the files the template changed changed."""
    repo, changed, _ = updated
    for path in repo.rglob("*"):
        if ".git" in path.parts or ".dvc" in path.parts or not path.is_file():
            continue
        assert path.suffix != ".rej", f"rejected hunk: {path}"
        text = path.read_text(errors="replace")
        for marker in ("<<<<<<< ", ">>>>>>> ", "\n=======\n"):
            assert marker not in text, f"conflict marker in {path.relative_to(repo)}"
    assert changed == {".copier-answers.yml", ".gitignore", "README.md", "CONTRIBUTING.md", "pyproject.toml"}


def test_update_does_not_rerun_the_hook(updated: tuple[Path, set[str], str]) -> None:
    """The one-shot hook (git init, dvc, lock, commit) is skipped on update: no commit, same lock."""
    repo, changed, head = updated
    assert git(repo, "rev-parse", "HEAD").strip() == head
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "2"
    assert "uv.lock" not in changed and ".dvc/config" not in changed


def test_second_update_changes_nothing(updated: tuple[Path, set[str], str]) -> None:
    """Updating again to the same version is a no-op (after committing the first update)."""
    repo, _, _ = updated
    commit_all(repo, "update the template to v0.2.0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_update(repo, defaults=True, unsafe=True, overwrite=True, vcs_ref="v0.2.0", quiet=True)
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_ci_guard_catches_update_leftovers(updated: tuple[Path, set[str], str]) -> None:
    """The generated checks workflow's guard passes on the merged repository and fails on leftovers."""
    repo, _, _ = updated
    workflow = yaml.safe_load((repo / ".github/workflows/checks.yml").read_text())
    script = next(step for step in workflow["jobs"]["repository"]["steps"] if step.get("id") == "leftovers")[
        "run"
    ]

    def guard() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-e", "-c", script], cwd=repo, capture_output=True, text=True, check=False
        )

    assert guard().returncode == 0, guard().stdout
    readme = repo / "README.md"
    original = readme.read_text()
    readme.write_text(original + "<<<<<<< before updating\nold\n=======\nnew\n>>>>>>> after updating\n")
    failed = guard()
    assert failed.returncode == 1 and "resolve the conflict markers" in failed.stdout
    readme.write_text(original)
    rejected = repo / "pyproject.toml.rej"
    rejected.write_text("@@ -1 +1 @@\n")
    failed = guard()
    assert failed.returncode == 1 and "pyproject.toml.rej" in failed.stdout
    rejected.unlink()
    assert guard().returncode == 0
