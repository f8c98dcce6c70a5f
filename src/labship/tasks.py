"""The Invoke collection an experiment repository loads: thin tasks over labship's modules.

Each task reads `[tool.labship]` (see `labship.config`), calls one module and turns its errors
into a clear message and a non-zero exit. Logic belongs in the modules, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from invoke import Collection, Exit, task

from labship.config import ConfigError


@contextmanager
def user_errors(*kinds: type[Exception]) -> Iterator[None]:
    """Turn expected errors into `Exit` with the message only (no traceback) and status 1."""
    try:
        yield
    except (ConfigError, *kinds) as error:
        raise Exit(f"error: {error}", code=1) from error


def not_yet(issue: int) -> Callable[..., Any]:
    def fail(*_args: Any, **_kwargs: Any) -> None:
        raise Exit(f"error: not implemented yet (issue #{issue})", code=2)

    return fail


# --- compress (issue 3) -------------------------------------------------------------------------
@task
def compress(c):  # type: ignore[no-untyped-def]
    """Convert CSV to Parquet for the datasets of [tool.labship.datasets]."""
    not_yet(3)()


# --- images (issue 4) ---------------------------------------------------------------------------
@task
def build(c):  # type: ignore[no-untyped-def]
    """Build the Jupyter image variants of [tool.labship.images]."""
    not_yet(4)()


# --- notebook (issue 4) -------------------------------------------------------------------------
@task
def notebook(c):  # type: ignore[no-untyped-def]
    """Start the Jupyter server for a notebook of [tool.labship.notebooks]."""
    not_yet(4)()


# --- data (issue 5) -----------------------------------------------------------------------------
@task
def push(c):  # type: ignore[no-untyped-def]
    """Upload the DVC-tracked data to the default remote."""
    not_yet(5)()


@task
def pull(c):  # type: ignore[no-untyped-def]
    """Download DVC-tracked data from the default remote."""
    not_yet(5)()


@task
def status(c):  # type: ignore[no-untyped-def]
    """Compare the local data with the remote; fails when they differ."""
    not_yet(5)()


@task
def remote(c):  # type: ignore[no-untyped-def]
    """Show or change the default DVC remote."""
    not_yet(5)()


def namespace() -> Collection:
    """The collection an experiment's tasks.py exposes: compress, build, notebook, data.*."""
    data = Collection("data", push, pull, status, remote)
    return Collection(compress, build, notebook, data)


ns = namespace()
