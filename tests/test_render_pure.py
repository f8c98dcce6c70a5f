"""Renders are a pure function of the answers file.

`copier update` re-renders the experiment's old template version from `.copier-answers.yml` and
takes every difference from the files the user has as the user's own edit. Copier writes that file
with its keys sorted, so a render that follows the order the answers were given in (a dict's
insertion order), the machine or the clock makes an untouched file look edited, and the update
leaves conflict markers in it (issue 13: `pyproject.toml` around `[tool.labship.images.*]`).

Each pairwise case below is rendered twice, files only (no hook, no lock, no git): once from the
answers as given, once from the `.copier-answers.yml` the first render wrote. The two trees must be
byte-identical, and so must a case whose image variants are given in the opposite order. Both
renders come from one committed snapshot of this checkout (tests.template_history), as a user's
renders come from one labship commit. Last, the post-copy hook must not rewrite a rendered file
(what it commits is what Copier will re-render).
"""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml

from tests.scaffold import TEST_PYTHON, scaffold
from tests.template_history import snapshot

VARIANTS = {"notebook": "notebook", "models": "notebook,models", "gpu": "notebook,models,torch"}
REVERSED = dict(reversed(VARIANTS.items()))
NO_NOTEBOOK_VARIANT = {"slim": "notebook", "full": "notebook,models,extra", "big": "notebook,geo"}

# Pairwise over variant order (as copier.yml's default, reversed, no "notebook" variant) x package
# manager x CI provider x DVC remote kind: every pair of values appears in some case.
CASES: dict[str, dict[str, Any]] = {
    "default-uv-github-local": {"package_manager": "uv", "ci_provider": "github"},
    "reversed-poetry-none-s3": {
        "image_variants": REVERSED,
        "package_manager": "poetry",
        "ci_provider": "none",
        "dvc_remote_url": "s3://lab-bucket/traffic",
        "dvc_s3_endpoint": "http://127.0.0.1:9000",
    },
    "forward-uv-none-ssh": {
        "image_variants": VARIANTS,
        "package_manager": "uv",
        "ci_provider": "none",
        "dvc_remote_url": "ssh://dvc@127.0.0.1:2222/srv/dvc",
    },
    "nonotebook-poetry-github-ssh": {
        "image_variants": NO_NOTEBOOK_VARIANT,
        "package_manager": "poetry",
        "ci_provider": "github",
        "dvc_remote_url": "ssh://dvc@127.0.0.1:2222/srv/dvc",
        "registry": "",
    },
    "reversed-uv-github-s3": {
        "image_variants": REVERSED,
        "package_manager": "uv",
        "ci_provider": "github",
        "dvc_remote_url": "s3://lab-bucket/traffic",
        "registry": "localhost:5000/lab",
    },
    "nonotebook-uv-none-local": {
        "image_variants": dict(reversed(NO_NOTEBOOK_VARIANT.items())),
        "package_manager": "uv",
        "ci_provider": "none",
        "sample_data": False,
    },
    "forward-poetry-github-local": {
        "image_variants": VARIANTS,
        "package_manager": "poetry",
        "ci_provider": "github",
    },
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout, uncommitted edits committed once (so `_commit` is the same in every render)."""
    return snapshot(tmp_path_factory.mktemp("template") / "labship")


def render(template: Path, dest: Path, data: dict[str, Any]) -> Path:
    """Render `template` at its HEAD into `dest`: files only, no hook."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. copier's DirtyLocalWarning: the snapshot must be clean
        copier.run_copy(
            str(template),
            dest,
            data={"python_version": TEST_PYTHON, **data},
            defaults=True,
            skip_tasks=True,
            vcs_ref="HEAD",
            quiet=True,
        )
    return dest


def answers_of(repo: Path) -> dict[str, Any]:
    """The answers as `copier update` reads them back: the answers file, without copier's own keys."""
    stored = yaml.safe_load((repo / ".copier-answers.yml").read_text(encoding="utf-8"))
    return {key: value for key, value in stored.items() if not key.startswith("_")}


def tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


def differences(first: dict[str, bytes], second: dict[str, bytes]) -> list[str]:
    """File names only in one tree, and files whose bytes differ (with the first differing line)."""
    problems = [f"only in one render: {name}" for name in sorted(set(first) ^ set(second))]
    for name in sorted(set(first) & set(second)):
        if first[name] != second[name]:
            lines = zip(first[name].decode().splitlines(), second[name].decode().splitlines(), strict=False)
            line = next(((a, b) for a, b in lines if a != b), ("(length)", "(length)"))
            problems.append(f"{name}: {line[0]!r} != {line[1]!r}")
    return problems


@pytest.mark.parametrize("answers", CASES.values(), ids=CASES.keys())
def test_render_is_a_function_of_the_answers_file(
    template: Path, answers: dict[str, Any], tmp_path: Path
) -> None:
    """Rendering again from the stored answers gives byte-identical files."""
    first = render(template, tmp_path / "given", answers)
    again = render(template, tmp_path / "stored", answers_of(first))
    assert differences(tree(first), tree(again)) == []


def test_variant_order_does_not_matter(template: Path, tmp_path: Path) -> None:
    """The same variants given in two orders render the same experiment (answers file included)."""
    forward = render(template, tmp_path / "forward", {"image_variants": VARIANTS})
    backward = render(template, tmp_path / "backward", {"image_variants": REVERSED})
    assert differences(tree(forward), tree(backward)) == []
    pyproject = (forward / "pyproject.toml").read_text(encoding="utf-8")
    order = [pyproject.index(f"[tool.labship.images.{name}]") for name in sorted(VARIANTS)]
    assert order == sorted(order), "image tables are not in name order"


def test_hook_leaves_the_rendered_files_alone(template: Path, tmp_path: Path) -> None:
    """The post-copy hook (git, dvc, sample data, lock, commit) adds files but rewrites no rendered one.

    uv only: with Poetry the tests' LABSHIP_POETRY_SIMPLE_INDEX option writes a source into
    pyproject.toml on purpose (see hooks/post_copy.py); users never set it.
    """
    answers = {"package_manager": "uv", "ci_provider": "github"}
    rendered = tree(render(template, tmp_path / "files", answers))
    made = scaffold(tmp_path / "made", answers, vcs_ref="HEAD", template=template)
    after_hook = {name: data for name, data in tree(made).items() if name in rendered}
    assert differences(rendered, after_hook) == []
    assert git_status(made) == ""  # and it committed them as rendered


def git_status(repo: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
