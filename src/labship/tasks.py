"""The Invoke collection an experiment repository loads: thin tasks over labship's modules.

Each task reads `[tool.labship]` (see `labship.config`), calls one module and turns its errors
into a clear message and a non-zero exit. Logic belongs in the modules, not here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from invoke import Collection, Exit, task

from labship.errors import LabshipError


@contextmanager
def user_errors() -> Iterator[None]:
    """The one place a `LabshipError` becomes `Exit`: its message (no traceback), its exit code."""
    try:
        yield
    except LabshipError as error:
        raise Exit(f"error: {error}", code=error.exit_code) from error


# --- compress (issue 3) -------------------------------------------------------------------------
@task(
    help={
        "dataset": "convert only this dataset of [tool.labship.datasets] (default: all of them)",
        "source": "ad-hoc source directory of .csv/.csv.gz files (use with --target)",
        "target": "ad-hoc target directory for the Parquet files (use with --source)",
        "columns": "comma list of the columns to keep (the rest is dropped)",
        "drop": "comma list of the columns to drop",
        "codec": "Parquet compression: zstd (default), snappy, gzip, brotli, lz4 or none",
        "level": "compression level of the codec (zstd default 3)",
        "on_bad_rows": "error (default): stop at a bad row; skip: set bad rows aside in target/_rejected/",
        "partition_by": "comma list of columns: write a hive-partitioned dataset (COL=value/...)",
        "pack_mb": "pack many small CSV files into Parquet files of about this many MB of CSV each "
        "(0: one Parquet file per CSV, the default)",
        "report": "also write the report as JSON to this file",
        "jobs": "number of worker processes (default: one per CPU core)",
        "delimiter": "CSV delimiter: comma, semicolon, pipe or tab (default: detected per file)",
        "quote": "quote character, or '' for none (default: detected, usually \")",
        "escape": 'quotes inside quoted fields: double ("") or backslash (\\") (default: detected)',
        "header": "true: the first row names the columns; false: it is data (default: detected)",
        "skip_lines": "number of lines before the header / first row to skip (default: detected)",
        "comment": "leading lines starting with this character are skipped; '' for none (default: #)",
        "cluster": "Dask scheduler address (tcp://host:8786) to convert on, or 'local' "
        "(default: compress-cluster of [tool.labship], else local)",
        "endpoint_url": "S3 API endpoint for s3:// sources/targets (default: the DVC remote's endpointurl); "
        "credentials: LABSHIP_ACCESS_KEY_ID/LABSHIP_SECRET_ACCESS_KEY or the DVC remote's, never a flag",
    }
)
def compress(  # type: ignore[no-untyped-def]
    c,
    dataset=None,
    source=None,
    target=None,
    columns=None,
    drop=None,
    codec=None,
    level=None,
    on_bad_rows=None,
    partition_by=None,
    pack_mb=None,
    report=None,
    jobs=None,
    delimiter=None,
    quote=None,
    escape=None,
    header=None,
    skip_lines=None,
    comment=None,
    cluster=None,
    endpoint_url=None,
):
    """Convert CSV to Parquet for the datasets of [tool.labship.datasets] (only what changed)."""
    from pathlib import Path

    from labship import compress as engine
    from labship.config import CODECS

    def names(text: str | None) -> tuple[str, ...]:
        return tuple(item.strip() for item in (text or "").split(",") if item.strip())

    with user_errors():
        if codec is not None and codec not in CODECS:
            raise engine.CompressError(f"--codec {codec}: use one of {', '.join(CODECS)}")
        if on_bad_rows is not None and on_bad_rows not in ("error", "skip"):
            raise engine.CompressError(f"--on-bad-rows {on_bad_rows}: use error or skip")
        overrides = engine.Overrides(
            columns=names(columns),
            drop=names(drop),
            codec=codec,
            level=int(level) if level is not None else None,
            on_bad_rows=on_bad_rows,
            partition_by=names(partition_by),
            pack_mb=_size_flag("--pack-mb", pack_mb),
            dialect=dialect_flags(delimiter, quote, escape, header, skip_lines, comment),
        )
        reports = engine.run(
            dataset=dataset,
            source=source or None,  # a path, or s3://bucket/prefix (kept a string: Path would eat a /)
            target=target or None,
            overrides=overrides,
            report_path=Path(report) if report else None,
            jobs=int(jobs) if jobs is not None else None,
            cluster=cluster,
            endpoint_url=endpoint_url,
        )
    if source is None and overrides == engine.Overrides():
        record_lineage([report.name for report in reports])


def _size_flag(flag: str, value: str | None) -> int | None:
    """A non-negative integer flag, or a CompressError naming it."""
    from labship import compress as engine

    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise engine.CompressError(f"{flag} {value}: give a whole number of MB (0: one file per CSV)")
    return number


def dialect_flags(  # type: ignore[no-untyped-def]
    delimiter, quote, escape, header, skip_lines, comment
):
    """The dialect flags of `invoke compress` as DialectSettings (checked by the engine)."""
    from labship.compress import CompressError
    from labship.compress.dialect import settings_from

    values = {"delimiter": delimiter, "quote": quote, "escape": escape, "comment": comment}
    chosen = {key: value for key, value in values.items() if value is not None}
    if header is not None:
        if str(header).lower() not in ("true", "false"):
            raise CompressError(f"--header {header}: use true or false", exit_code=2)
        chosen["header"] = str(header).lower() == "true"
    if skip_lines is not None:
        if not str(skip_lines).isdigit():
            raise CompressError(f"--skip-lines {skip_lines}: use a number of lines, 0 or more", exit_code=2)
        chosen["skip_lines"] = int(skip_lines)
    return settings_from(chosen)


def record_lineage(dataset_names: list[str]) -> None:
    """Record a hand-run compress in dvc.lock, as `dvc repro` would (only with the settings of
    pyproject.toml: output made with command-line overrides is not what the stage declares)."""
    from labship import data
    from labship.config import load_config

    with user_errors():
        config = load_config()
        for name in dataset_names:
            if isinstance(config.dataset(name).target, str):
                continue  # on object storage: not a DVC output of this repository
            if stage := data.record_compress(config.root, config.dataset(name)):
                print(f"recorded data for stage {stage!r} in dvc.lock (commit it with git)")


# --- images (issue 4) ---------------------------------------------------------------------------
@task(
    help={
        "variant": "build only this variant of [tool.labship.images] (default: all of them)",
        "base_image": "Jupyter base image (BASE_IMAGE build argument; default: [tool.labship] base-image, "
        "or env LABSHIP_BASE_IMAGE)",
        "push": "push the tags to [tool.labship] registry after building",
        "no_cache": "build every layer again (docker build --no-cache)",
    }
)
def build(c, variant=None, base_image=None, push=False, no_cache=False):  # type: ignore[no-untyped-def]
    """Build the Jupyter image variants of [tool.labship.images] from the lock file (same args as CI)."""
    from labship import images
    from labship.config import load_config

    with user_errors():
        config = load_config()
        results = images.build_images(
            config, variant=variant, base_image=base_image, push=push, no_cache=no_cache
        )
        print(images.format_summary(results))


# --- notebook (issue 4) -------------------------------------------------------------------------
@task(
    help={
        "name": "notebook of [tool.labship.notebooks] (default: default-notebook, else the first one)",
        "stop": "stop the notebook's server and remove its container and token",
        "logs": "print the server's recent log lines",
        "status": "say whether the server runs, and its URL with the token",
        "detach": "return once the server is ready (stop it later with --stop); default: run until Ctrl-C",
        "base_image": "base image, as given to `invoke build` (part of the content tag; default: "
        "[tool.labship] base-image, or env LABSHIP_BASE_IMAGE)",
        "build": "build the image here even when a local or published one has the current content tag",
        "timeout": "seconds to wait for the server to answer (default 120)",
    }
)
def notebook(  # type: ignore[no-untyped-def]
    c,
    name=None,
    stop=False,
    logs=False,
    status=False,
    detach=False,
    base_image=None,
    build=False,
    timeout=120,
):
    """Start Jupyter for a notebook (src/, notebooks/ mounted; its data read-only) and print the URL.

    The image is the variant's content tag: local if here, else pulled from the registry, else built.
    """
    from labship import notebook as server
    from labship.config import load_config

    with user_errors():
        config = load_config()
        if stop:
            server.stop_notebook(config, name)
            return
        if status:
            print(server.notebook_status(config, name))
            return
        if logs:
            print(server.notebook_logs(config, name), end="")
            return
        launch = server.start_notebook(
            config, name, base_image=base_image, build=build, timeout=float(timeout)
        )
        chosen = config.notebook(name)
        print(f"\n  {launch.url(chosen.path)}\n", flush=True)
        if detach:
            print(f"stop it with: invoke notebook --name {chosen.name} --stop")
            return
        print("Press Ctrl-C to stop the server (it leaves no container behind).", flush=True)
        server.serve_until_interrupted(config, launch)


# --- data (issue 5) -----------------------------------------------------------------------------
def transfer(
    action: str, targets: list[str] | None, remote: str | None, jobs: int, verbose: bool = False
) -> None:
    """data.push / data.pull: move the data with the experiment's uplink, then print the summary.

    DVC's progress is condensed to one line per step (labship.progress) unless `verbose`."""
    import sys

    from labship import data
    from labship.config import load_config
    from labship.progress import CondensedProgress

    move = data.push if action == "push" else data.pull
    echo = sys.stderr if verbose else CondensedProgress(sys.stderr)
    with user_errors():
        config = load_config()
        try:
            moved = move(
                config.root,
                targets=targets or (),
                remote=remote,
                jobs=jobs or None,
                uplink_mbps=config.uplink_mbps,
                echo=echo,  # type: ignore[arg-type]
            )
        finally:
            if isinstance(echo, CondensedProgress):
                echo.finish()
    print(moved.summary())


@task(
    help={
        "target": "a DVC-tracked path or .dvc file to push (repeatable; default: everything)",
        "remote": "remote name (default: the default remote; see `invoke data.remote`)",
        "jobs": "parallel transfers (default: DVC's, 4 x cores)",
        "verbose": "show DVC's full progress output (default: one line per step)",
    },
    iterable=["target"],
)
def push(c, target=None, remote=None, jobs=0, verbose=False):  # type: ignore[no-untyped-def]
    """Upload the DVC-tracked data the remote lacks, then summarise what moved and how long it takes.

    Re-running after a failure sends only what is still missing. Exit codes: see `data.status`.
    """
    transfer("push", target, remote, jobs, verbose)


@task(
    help={
        "target": "a DVC-tracked path or .dvc file to pull, e.g. data/processed/pems "
        "(repeatable; default: everything)",
        "remote": "remote name (default: the default remote; see `invoke data.remote`)",
        "jobs": "parallel transfers (default: DVC's, 4 x cores)",
        "verbose": "show DVC's full progress output (default: one line per step)",
    },
    iterable=["target"],
)
def pull(c, target=None, remote=None, jobs=0, verbose=False):  # type: ignore[no-untyped-def]
    """Download DVC-tracked data from the remote and check it out; a re-run completes an interrupted pull.

    Exit codes: see `data.status`.
    """
    transfer("pull", target, remote, jobs, verbose)


@task(
    help={
        "target": "limit the check to this DVC-tracked path or .dvc file (repeatable)",
        "remote": "remote name (default: the default remote)",
    },
    iterable=["target"],
)
def status(c, target=None, remote=None):  # type: ignore[no-untyped-def]
    """Compare the workspace with dvc.lock / *.dvc and with the remote; exit 1 when anything differs.

    0 ok, 1 out of sync (or failed), 2 no/broken remote configuration, 3 remote unreachable,
    4 credentials refused, 5 data lost (neither in the cache nor on the remote).
    """
    from labship import data
    from labship.config import load_config

    with user_errors():
        config = load_config()
        state = data.status(config.root, targets=target or (), remote=remote)
    print(state.summary())
    if state.exit_code:
        raise Exit(code=state.exit_code)


@task(
    help={
        "url": "new default remote: a directory, s3://BUCKET/PREFIX or ssh://USER@HOST[:PORT]/PATH "
        "(omit to show the remotes); a relative directory stays relative in .dvc/config",
        "name": "remote name (default: the default remote's when of the same kind, else s3/ssh/local)",
        "endpoint_url": "S3: endpoint of an S3-compatible server, e.g. https://minio.example.org (committed)",
        "region": "S3: region (committed)",
        "profile": "S3: your named AWS profile from ~/.aws (e.g. an `aws sso login` one; stored in "
        ".dvc/config.local)",
        "env_credentials": "S3: store no credentials; each command uses AWS_ACCESS_KEY_ID/"
        "AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN or AWS_PROFILE from the environment",
        "access_key_id": "S3: your access key id (stored in .dvc/config.local only); its secret comes "
        "from --secret-access-key-stdin, $LABSHIP_SECRET_ACCESS_KEY or a prompt",
        "secret_access_key_stdin": "S3: read the secret access key from the first line of standard input",
        "secret_access_key": "S3: the secret on the command line: discouraged, other users see it in `ps`",
        "keyfile": "SSH: private key file (stored in .dvc/config.local only)",
        "terraform_outputs": "S3: take --url and --region from this file of `terraform -chdir=infra output "
        "-json` (the template's infra/)",
    }
)
def remote(  # type: ignore[no-untyped-def]
    c,
    url=None,
    name=None,
    endpoint_url=None,
    region=None,
    profile=None,
    env_credentials=False,
    access_key_id=None,
    secret_access_key_stdin=False,
    secret_access_key=None,
    keyfile=None,
    terraform_outputs=None,
):
    """Show the DVC remotes (credentials masked), or make URL the default remote.

    Shared settings (url, endpoint, user) go to the committed .dvc/config: commit it so
    collaborators get them. Who you are (profile, key, SSH key) goes to .dvc/config.local only,
    which git ignores: each teammate sets their own. Secrets are never needed on the command line.
    """
    import getpass
    import os
    import sys
    from pathlib import Path

    from labship import data
    from labship.config import find_root

    with user_errors():
        root = find_root()
        if terraform_outputs:
            if url:
                raise data.DataError("give --url or --terraform-outputs, not both", data.EXIT_CONFIG)
            url, applied_region = data.terraform_remote(Path(terraform_outputs))
            region = region or applied_region
        if url is None:
            print(data.show_remotes(root), end="")
            return
        if secret_access_key:
            print(
                "warning: a secret on the command line is visible to other users (`ps`) and kept in shell "
                f"history: prefer --secret-access-key-stdin or {data.SECRET_ENV}",
                file=sys.stderr,
            )
        interactive = access_key_id and sys.stdin.isatty() and not secret_access_key_stdin
        secret = data.secret_from(
            stdin=sys.stdin if secret_access_key_stdin else None,
            environ=os.environ,
            given=secret_access_key,
            prompt=(lambda: getpass.getpass("secret access key (stored in .dvc/config.local): "))
            if interactive
            else None,
        )
        data.set_remote(
            root,
            url,
            name=name,
            endpoint_url=endpoint_url,
            region=region,
            profile=profile,
            access_key_id=access_key_id,
            secret_access_key=secret
            if access_key_id or secret_access_key_stdin or secret_access_key
            else None,
            environment=env_credentials,
            keyfile=keyfile,
        )
        print(data.show_remotes(root), end="")
        print("commit .dvc/config so collaborators use this remote (credentials stay in .dvc/config.local)")


# --- doctor (issue 10) ---------------------------------------------------------------------------
@task(
    help={
        "strict": "count warnings (e.g. the notebook port is taken) as failures in the exit status",
        "port": "notebook port to check on 127.0.0.1 (default 8888, the one `invoke notebook` prefers)",
    }
)
def doctor(c, strict=False, port=None):  # type: ignore[no-untyped-def]
    """Check that this machine can build, launch and share the experiment; print the fix for each problem.

    Docker engine and version, compose v2, BuildKit or legacy builder, the base image, free disk, git
    identity, the lock file against pyproject.toml, the DVC remote and its credentials (read-only), the
    notebook port. Exit 0 when ready; else the code of the first failure (3 unreachable, 4 credentials
    refused, 2 configuration, 1 other).
    """
    from labship import doctor as preflight

    checks = preflight.run_checks(port=int(port) if port else None)
    print(preflight.format_table(checks))
    print(f"\n{preflight.verdict(checks, strict=strict)}")
    if code := preflight.exit_code(checks, strict=strict):
        raise Exit(code=code)


def namespace() -> Collection:
    """The collection an experiment's tasks.py exposes: compress, build, notebook, doctor, data.*."""
    data = Collection("data", push, pull, status, remote)
    return Collection(compress, build, notebook, doctor, data)


ns = namespace()
