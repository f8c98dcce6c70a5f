"""This repository's own tasks (test, lint, demo, base-image) plus labship's experiment tasks.

Run them through the quickstart wrapper (`bash dev.sh test`, `bash dev.sh demo`) or, inside the
venv, with `invoke --list`.
"""

from __future__ import annotations

import sys

from invoke import Context, task

from labship.tasks import namespace

PTY = sys.platform != "win32"


@task(
    help={
        "k": "only run tests matching this pytest -k expression",
        "x": "stop at the first failure",
        "fast": "skip the tests that need a Docker engine",
    },
    positional=[],
)
def test(c: Context, k: str = "", x: bool = False, fast: bool = False) -> None:
    """Run the test suite (pytest); end-to-end tests start their own engine-side parts."""
    args = ["python", "-m", "pytest"]
    if k:
        args += ["-k", repr(k)]
    if x:
        args.append("-x")
    if fast:
        args += ["-m", "'not docker'"]
    c.run(" ".join(args), pty=PTY)


@task
def lint(c: Context) -> None:
    """Check style and formatting with ruff."""
    c.run("ruff check .", pty=PTY)
    c.run("ruff format --check .", pty=PTY)


ns = namespace()
ns.add_task(test)
ns.add_task(lint)
