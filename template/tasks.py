"""This experiment's tasks (`invoke --list`): compress, build, notebook, data.push / data.pull, ...

They come from labship, a tool installed next to Copier, not a dependency of this project; they
read their settings from [tool.labship] in pyproject.toml.
"""

try:
    from labship.tasks import namespace
except ImportError as error:  # pragma: no cover - depends on the machine
    raise SystemExit(
        "labship is not installed where `invoke` runs. Install both once (see README.md), e.g.\n"
        "    uv tool install --with-executables-from invoke,dvc,copier <labship checkout or git+URL>\n"
        "    (or: pipx install --include-deps <labship checkout or git+URL>)\n"
        "then run `invoke --list` again in this directory."
    ) from error

ns = namespace()
