"""Scaffold an experiment repository from this checkout of the template, for tests.

    from tests.scaffold import scaffold
    repo = scaffold(tmp_path / "exp", {"package_manager": "poetry"})

Runs `copier copy --trust --defaults` of the labship checkout (uncommitted changes included, as
copier does for `vcs_ref="HEAD"`, copier#1943), so tests always see the template being edited.
The hook then does git init, dvc init, the remote, sample data, the lock file and the first commit.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import copier
import plumbum
from copier.errors import DirtyLocalWarning

TEMPLATE = Path(__file__).resolve().parent.parent
# Our CI machines cannot download a Python build, and uv lock needs an interpreter that satisfies
# requires-python: test projects default to the Python running the tests (3.11 on Debian 12).
TEST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
# PyPI's per-version JSON API (used by Poetry's built-in PyPI source) answers 404 on our CI
# machines while the simple index works: the hook's test-only option makes Poetry lock from it.
POETRY_SIMPLE_INDEX = "https://pypi.org/simple/"


def scaffold(
    dest: Path,
    answers: dict[str, Any] | None = None,
    *,
    vcs_ref: str | None = "HEAD",
    template: Path = TEMPLATE,
) -> Path:
    """Render `template` (default: this checkout) into `dest` with `answers` over the defaults.

    Returns `dest`. `vcs_ref="HEAD"` includes uncommitted changes; a commit or tag renders that
    version (for update tests); `None` lets copier pick the newest version tag.
    """
    data: dict[str, Any] = {"python_version": TEST_PYTHON, **(answers or {})}
    with (
        hook_environment(
            LABSHIP_POETRY_SIMPLE_INDEX=os.environ.get("LABSHIP_POETRY_SIMPLE_INDEX", POETRY_SIMPLE_INDEX),
            DVC_NO_ANALYTICS="1",
            UV_PYTHON_DOWNLOADS="never",
            # the hook's sample data at the size the tests were written for (1.2 MB, not the 35 MB demo)
            LABSHIP_SAMPLE_SIZE=os.environ.get("LABSHIP_SAMPLE_SIZE", "small"),
        ),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", DirtyLocalWarning)  # rendering the checkout being edited is the point
        copier.run_copy(
            str(template),
            dest,
            data=data,
            defaults=True,
            unsafe=True,
            vcs_ref=vcs_ref,
            quiet=True,
        )
    return dest


@contextmanager
def hook_environment(**values: str) -> Iterator[None]:
    """Set environment variables for the hook's subprocesses, restoring the previous values.

    Copier starts tasks with plumbum's copy of the environment (taken at import), so both that copy
    and os.environ are set.
    """
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        with plumbum.local.env(**values):
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
