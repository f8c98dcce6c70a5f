"""`copier update` from real earlier labship commits to this checkout, as a user runs it.

For each start commit: `copier copy --trust --defaults --vcs-ref <commit>` of this repository
(through the hook of that commit: git, dvc, lock, first commit), then the user's edits where users
edit (a function in src/<package>/, a markdown cell of the notebook and a new notebook, a
`[tool.labship]` value, a new dependency group, re-locked), committed; then `copier update --trust
--defaults --vcs-ref HEAD` with the `copier` command. Required: exit 0, no conflict markers and no
`.rej` anywhere, the edits intact, the recorded `format`, the lock file consistent with
`pyproject.toml`, and the experiment's tasks (`invoke --list`, `invoke compress`) working.

The template is a committed snapshot of this checkout with its full history (tests.template_history):
a shallow clone or a missing start commit fails the test with the command that fixes it.
Each update's time and the files it changed are printed (`pytest -s`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from labship.config import FORMAT, load_config
from tests.scaffold import TEST_PYTHON, scaffold
from tests.template_history import IDENTITY, git, render_files, require_commits, snapshot, update_step

# 3da70f5's copier.yml validators spell `\s` in YAML double quotes; Jinja warns when it renders them
pytestmark = pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")
VENV_BIN = Path(sys.executable).parent
USER_FUNCTION = "\n\ndef mean_speed(total: float, count: int) -> float:\n    return total / count\n"
USER_GROUP = 'reports = [\n    "pyarrow>=18",\n]\n'
USER_NOTEBOOK_TITLE = "# Traffic sensors of District 4"


@dataclass(frozen=True)
class Start:
    """An earlier labship commit an experiment is made from, and the answers it is made with."""

    commit: str
    what: str
    answers: dict[str, Any]

    @property
    def lock_file(self) -> str:
        return "poetry.lock" if self.answers.get("package_manager") == "poetry" else "uv.lock"


STARTS = [
    Start("3da70f5", "first landed copier.yml", {}),
    Start("5dd8243", "mid (the issue's example)", {}),
    Start("d6c9ae7", "previous release", {"package_manager": "poetry"}),
]
VIA_WORKFLOW = STARTS[-1]


def tool_env() -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "UV_PYTHON_DOWNLOADS": "never",
    }


def run(repo: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """Run a command of the experiment's tool chain; a failure shows its output."""
    result = subprocess.run(command, cwd=repo, env=tool_env(), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(
            f"`{' '.join(command)}` exited {result.returncode} in {repo}:\n{result.stdout}\n{result.stderr}"
        )
    return result


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout with its history; the start commits must be in it."""
    require_commits(*(start.commit for start in STARTS))
    return snapshot(tmp_path_factory.mktemp("template") / "labship")


def user_edits(repo: Path, start: Start) -> None:
    """Edit what users edit, re-lock for the new group, and commit."""
    package_init = next((repo / "src").glob("*/__init__.py"))
    package_init.write_text(package_init.read_text() + USER_FUNCTION)
    notebook = repo / "notebooks/traffic.ipynb"
    notebook.write_text(notebook.read_text().replace("# Traffic sensors", USER_NOTEBOOK_TITLE, 1))
    shutil.copy(notebook, repo / "notebooks/district4.ipynb")
    pyproject = repo / "pyproject.toml"
    text = pyproject.read_text()
    assert "uplink-mbps = 24.5\n" in text and "\n[build-system]" in text
    text = text.replace("uplink-mbps = 24.5\n", "uplink-mbps = 100.0\n")
    pyproject.write_text(text.replace("\n[build-system]", f"{USER_GROUP}\n[build-system]", 1))
    if start.lock_file == "uv.lock":
        run(repo, "uv", "lock", "--quiet")
    else:
        run(repo, "poetry", "lock")
    git(repo, "add", "--all")
    git(repo, *IDENTITY, "commit", "--quiet", "-m", "my analysis")


def render_current(template: Path, dest: Path) -> Path:
    """This checkout's render (files only): where the workflow's current `update` step is read."""
    return render_files(template, dest, "HEAD")


@dataclass
class Updated:
    repo: Path
    start: Start
    output: str
    seconds: float
    changed: list[str]


_UPDATED: dict[str, Updated] = {}


def make_updated(start: Start, template: Path, tmp_path_factory: pytest.TempPathFactory) -> Updated:
    """An experiment made from `start`, edited by its user, then updated to this checkout (once).

    The previous release is updated by the generated workflow's `update` step, as the scheduled
    update runs it in CI; the older starts by `copier update` on the command line.
    """
    if start.commit in _UPDATED:
        return _UPDATED[start.commit]
    repo = scaffold(
        tmp_path_factory.mktemp(start.commit) / "experiment",
        {"python_version": TEST_PYTHON, **start.answers},
        vcs_ref=start.commit,
        template=template,
    )
    assert yaml.safe_load((repo / ".copier-answers.yml").read_text())["_commit"] == start.commit
    user_edits(repo, start)
    began = time.monotonic()
    if start is VIA_WORKFLOW:
        reference = render_current(template, tmp_path_factory.mktemp("current") / "experiment")
        outputs = update_step(reference, repo, tmp_path_factory.mktemp("runner"))
        # the first update adds update.yml itself: a workflow file, which the default token may not push
        assert outputs == {"changed": "true", "conflicts": "false", "workflows": "true"}
        output = ""
    else:
        result = subprocess.run(
            [str(VENV_BIN / "copier"), "update", "--trust", "--defaults", "--vcs-ref", "HEAD"],
            cwd=repo,
            env=tool_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
    seconds = time.monotonic() - began
    changed = sorted(
        line[3:] for line in git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    )
    print(f"\nupdate from {start.commit} ({start.what}): {seconds:.1f} s; changed: {', '.join(changed)}")
    _UPDATED[start.commit] = Updated(repo, start, output, seconds, changed)
    return _UPDATED[start.commit]


@pytest.fixture(scope="module", params=STARTS, ids=[start.commit for start in STARTS])
def updated(
    request: pytest.FixtureRequest, template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Updated:
    return make_updated(request.param, template, tmp_path_factory)


def test_no_conflicts_left(updated: Updated) -> None:
    """No conflict markers and no .rej file anywhere, and nothing left staged by the migrations."""
    repo = updated.repo
    listed = git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        assert not name.endswith(".rej"), f"rejected hunk: {name}\n{updated.output}"
        path = repo / name
        if path.is_file() and path.suffix not in {".parquet", ".lock"}:
            for line in path.read_text(errors="replace").splitlines():
                assert not line.startswith(("<<<<<<< ", ">>>>>>> ")), f"conflict in {name}\n{updated.output}"
    assert git(repo, "diff", "--cached", "--name-only") == ""


def test_user_edits_are_kept(updated: Updated) -> None:
    """The function, both notebooks, the [tool.labship] value and the dependency group survive."""
    repo = updated.repo
    assert next((repo / "src").glob("*/__init__.py")).read_text().endswith(USER_FUNCTION)
    assert USER_NOTEBOOK_TITLE in (repo / "notebooks/traffic.ipynb").read_text()
    assert USER_NOTEBOOK_TITLE in (repo / "notebooks/district4.ipynb").read_text()
    document = tomllib.loads((repo / "pyproject.toml").read_text())
    assert document["dependency-groups"]["reports"] == ["pyarrow>=18"]
    config = load_config(repo)
    assert config.uplink_mbps == 100.0
    assert set(config.images) == {"notebook", "models"}


def test_update_brings_the_new_template(updated: Updated) -> None:
    """The experiment now records this checkout: answers `_commit`, `format`, the new files."""
    repo = updated.repo
    answers = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    assert answers["_commit"] != updated.start.commit
    config = load_config(repo)
    assert config.format == FORMAT
    assert config.labship_version
    pyproject = (repo / "pyproject.toml").read_text()
    assert pyproject.index("[tool.labship.images.models]") < pyproject.index("[tool.labship.images.notebook]")
    for name in ("Dockerfile", "compose.yaml", "dvc.yaml", ".dockerignore", ".github/workflows/update.yml"):
        assert (repo / name).is_file(), name


def test_lock_file_still_matches(updated: Updated) -> None:
    """`uv lock --check` / `poetry check --lock` accept the updated pyproject.toml."""
    if updated.start.lock_file == "uv.lock":
        run(updated.repo, "uv", "lock", "--check")
    else:
        run(updated.repo, "poetry", "check", "--lock")


def test_tasks_still_work(updated: Updated) -> None:
    """`invoke --list` lists labship's tasks and `invoke compress` writes the Parquet dataset."""
    repo = updated.repo
    listing = run(repo, "invoke", "--list").stdout
    assert "compress" in listing and "notebook" in listing
    run(repo, "invoke", "compress")
    assert list((repo / "data/processed/pems").rglob("*.parquet"))


def test_checks_workflow_catches_update_leftovers(updated: Updated) -> None:
    """The generated checks workflow's guard passes on the updated experiment and fails on leftovers."""
    repo = updated.repo
    workflow = yaml.safe_load((repo / ".github/workflows/checks.yml").read_text())
    steps = workflow["jobs"]["repository"]["steps"]
    script = next(step for step in steps if step.get("id") == "leftovers")["run"]

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


def test_scheduled_update_of_an_updated_experiment_changes_nothing(
    template: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Committed, the updated experiment updates again (the workflow's step) with nothing to do."""
    repo = make_updated(VIA_WORKFLOW, template, tmp_path_factory).repo
    git(repo, "add", "--all")
    git(repo, *IDENTITY, "commit", "--quiet", "-m", "update labship")
    outputs = update_step(repo, repo, tmp_path_factory.mktemp("runner"))
    assert outputs == {"changed": "false", "conflicts": "false", "workflows": "false"}
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
